"""The digest's chart over the hand-built desk: the weekdays shown, the scale, an empty period."""

from datetime import date, timedelta

from matplotlib.figure import Figure
from sqlalchemy.orm import Session, sessionmaker

from bot.digest_chart import load_chart_figure, load_chart_png
from handlers.i18n import Translator
from store.stats import DigestStats, Period, collect_stats
from tests import digest_fixture as fx

T = Translator("en", fx.TIMEZONE)


def stats_of(session_factory: sessionmaker[Session], first: date, days: int) -> DigestStats:
    fx.build_desk(session_factory)
    period = Period(first, first + timedelta(days=days), fx.TIMEZONE)
    with session_factory() as session:
        return collect_stats(session, period, fx.AGENTS, fx.NOW)


def row_labels(figure: Figure) -> list[str]:
    return [label.get_text() for label in figure.axes[0].get_yticklabels()]


def texts(figure: Figure) -> list[str]:
    return [text.get_text() for text in figure.axes[0].texts]


def test_empty_period_empty_grid(
    session_factory: sessionmaker[Session],
) -> None:
    stats = stats_of(session_factory, date(2026, 1, 1), 1)

    figure = load_chart_figure(stats, T)

    [image] = figure.axes[0].images
    assert image.get_clim() == (0, 1)
    assert texts(figure) == ["No customer messages in this period"]
    assert row_labels(figure) == ["Thu"]
    assert load_chart_png(stats, T).startswith(b"\x89PNG")


def test_one_day_one_row(
    session_factory: sessionmaker[Session],
) -> None:
    stats = stats_of(session_factory, fx.DAY, 1)

    figure = load_chart_figure(stats, T)

    [image] = figure.axes[0].images
    assert row_labels(figure) == ["Sun"]
    drawn = image.get_array()
    assert drawn is not None
    assert drawn.tolist() == [stats.load[6]]
    assert image.get_clim() == (0, 2)
    assert texts(figure) == []
    assert figure.axes[0].get_title() == ("Customer messages by hour and weekday, March 29, 2026")
    assert figure.axes[1].get_ylabel() == "Customer messages"


def test_weekday_rows_in_order(
    session_factory: sessionmaker[Session],
) -> None:
    weekend = stats_of(session_factory, date(2026, 3, 28), 2)
    week = Period(date(2026, 3, 25), date(2026, 4, 1), fx.TIMEZONE)
    with session_factory() as session:
        whole_week = collect_stats(session, week, fx.AGENTS, fx.NOW)

    assert row_labels(load_chart_figure(weekend, T)) == ["Sat", "Sun"]
    assert row_labels(load_chart_figure(whole_week, T)) == [
        "Mon",
        "Tue",
        "Wed",
        "Thu",
        "Fri",
        "Sat",
        "Sun",
    ]
