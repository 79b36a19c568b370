"""The digest as tables a person reads: titles and headings from the catalogue, values raw.

The terminal, the CSV file and Slack all draw the same `DigestReport`, so they
show the same figures. Cells keep their raw value (a count, seconds, a name);
`format_cell` writes one for the reader's locale with Babel, and `raw_cell`
writes it for a spreadsheet.

Durations counted in business hours only are written in hours and minutes,
never in days: a day of 24 business hours would read as a calendar day.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from babel.dates import format_date, format_interval, get_day_names
from babel.numbers import format_decimal

from handlers.i18n import Translator
from handlers.labels import PRIORITY_LABELS, STATUS_LABELS
from store.stats import DigestStats, DurationSummary, Period, Trend

logger = logging.getLogger(__name__)

NO_VALUE = "—"
BUSIEST_SLOTS = 3


@dataclass(frozen=True)
class Seconds:
    """A duration in seconds, or None when there was nothing to measure.

    `business_hours` is true when only opening hours were counted.
    """

    value: float | None
    business_hours: bool = False


@dataclass(frozen=True)
class Change:
    """A difference against the previous period, written with its sign."""

    value: int


Cell = str | int | Seconds | Change


@dataclass(frozen=True)
class Section:
    title: str
    header: list[str]
    rows: list[list[Cell]]


@dataclass(frozen=True)
class DigestReport:
    title: str
    period: str
    sections: list[Section]


def build_report(stats: DigestStats, t: Translator) -> DigestReport:
    """Lay out every number of `stats` in sections with translated headings."""
    sections = [
        _summary(stats, t),
        _times(stats, t),
        _backlog(stats, t),
        _trends(t.gettext("Tickets by tag"), t.gettext("Tag"), stats.tags, t),
        _trends(t.gettext("Tickets by topic"), t.gettext("Topic"), stats.topics, t),
        _questions(stats, t),
        _busiest(stats, t),
    ]
    return DigestReport(
        title=t.gettext("Support digest"),
        period=period_label(stats.period, t),
        sections=[section for section in sections if section.rows],
    )


def period_label(period: Period, t: Translator) -> str:
    """ "29 March 2026", or "23–29 March 2026" for several days, in the reader's language."""
    last_day = period.end_day - timedelta(days=1)
    if last_day == period.first_day:
        return format_date(period.first_day, format="long", locale=t.locale)
    return format_interval(period.first_day, last_day, "yMMMd", locale=t.locale)


def _summary(stats: DigestStats, t: Translator) -> Section:
    rows: list[list[Cell]] = [
        [t.gettext("Tickets received"), stats.received],
        [t.gettext("Tickets solved"), stats.solved],
        [t.gettext("Open tickets at the end"), stats.backlog_total],
        [t.gettext("First responses past the SLA"), stats.first_response_breaches],
        [t.gettext("Resolutions past the SLA"), stats.resolution_breaches],
        [t.gettext("Unanswered questions to departments"), stats.unanswered_total],
        [t.gettext("Auto-replies sent"), stats.auto_replies],
        [t.gettext("Spam caught"), stats.spam],
        [t.gettext("Tickets with automatic mail only"), stats.automatic_only],
    ]
    return Section(t.gettext("Summary"), [t.gettext("Figure"), t.gettext("Value")], rows)


def _times(stats: DigestStats, t: Translator) -> Section:
    header = [
        t.gettext("Who"),
        t.gettext("Replies"),
        t.gettext("First response, median"),
        t.gettext("First response, 90%"),
        t.gettext("Resolution, median"),
        t.gettext("Resolution, 90%"),
    ]
    business = stats.business_hours_only
    team_replies = sum(agent.replies for agent in stats.agents)
    rows = [
        _time_row(t.gettext("Team"), team_replies, stats.first_response, stats.resolution, business)
    ]
    for agent in stats.agents:
        rows.append(
            _time_row(agent.name, agent.replies, agent.first_response, agent.resolution, business)
        )
    # In a CSV file every row starts with this title, so it labels each duration.
    title = (
        t.gettext("Response times in business hours") if business else t.gettext("Response times")
    )
    return Section(title, header, rows)


def _time_row(
    name: str,
    replies: int,
    first_response: DurationSummary,
    resolution: DurationSummary,
    business_hours: bool,
) -> list[Cell]:
    return [
        name,
        replies,
        Seconds(first_response.median, business_hours),
        Seconds(first_response.p90, business_hours),
        Seconds(resolution.median, business_hours),
        Seconds(resolution.p90, business_hours),
    ]


def _backlog(stats: DigestStats, t: Translator) -> Section:
    header = [t.gettext("Status"), t.gettext("Priority"), t.gettext("Tickets")]
    order = {name: index for index, name in enumerate([*STATUS_LABELS, *PRIORITY_LABELS])}
    rows: list[list[Cell]] = [
        [
            t.gettext(STATUS_LABELS.get(status, status)),
            t.gettext(PRIORITY_LABELS.get(priority, priority)),
            count,
        ]
        for (status, priority), count in sorted(
            stats.backlog.items(),
            key=lambda item: (order.get(item[0][0], 99), -order.get(item[0][1], 0)),
        )
    ]
    return Section(t.gettext("Open tickets at the end"), header, rows)


def _trends(title: str, name: str, trends: list[Trend], t: Translator) -> Section:
    header = [name, t.gettext("Tickets"), t.gettext("Period before"), t.gettext("Change")]
    rows: list[list[Cell]] = [
        [trend.name, trend.count, trend.previous, Change(trend.change)] for trend in trends
    ]
    return Section(title, header, rows)


def _questions(stats: DigestStats, t: Translator) -> Section:
    header = [t.gettext("Department"), t.gettext("Unanswered questions")]
    rows: list[list[Cell]] = [[name, count] for name, count in stats.unanswered_questions.items()]
    return Section(t.gettext("Questions to departments"), header, rows)


def _busiest(stats: DigestStats, t: Translator) -> Section:
    """The busiest hours of the week, most customer messages first."""
    days = get_day_names("wide", locale=t.locale)
    slots = [
        (count, weekday, hour)
        for weekday, hours in enumerate(stats.load)
        for hour, count in enumerate(hours)
        if count
    ]
    slots.sort(key=lambda slot: (-slot[0], slot[1], slot[2]))
    rows: list[list[Cell]] = [
        [str(days[weekday]), f"{hour:02d}:00–{(hour + 1) % 24:02d}:00", count]
        for count, weekday, hour in slots[:BUSIEST_SLOTS]
    ]
    header = [t.gettext("Day"), t.gettext("Hour"), t.gettext("Customer messages")]
    return Section(t.gettext("Busiest hours"), header, rows)


def format_cell(cell: Cell, t: Translator) -> str:
    """Write a cell for a person: numbers and durations in the reader's locale."""
    if isinstance(cell, Seconds):
        return format_duration(cell.value, t, cell.business_hours)
    if isinstance(cell, Change):
        number = format_decimal(abs(cell.value), locale=t.locale)
        if cell.value > 0:
            return f"+{number}"
        if cell.value < 0:
            return f"−{number}"
        return "0"
    if isinstance(cell, int):
        return format_decimal(cell, locale=t.locale)
    return cell


def raw_cell(cell: Cell) -> str:
    """Write a cell for a spreadsheet: durations in seconds, no grouping of digits.

    Seconds are a plain decimal number, exact: whole, or with the hundredths a
    percentile between two durations can have ("36597368.6", never "3.65974e+07").
    """
    if isinstance(cell, Seconds):
        return "" if cell.value is None else f"{cell.value:.2f}".rstrip("0").rstrip(".")
    if isinstance(cell, Change):
        return str(cell.value)
    return str(cell)


def format_duration(seconds: float | None, t: Translator, business_hours: bool = False) -> str:
    """ "45 min", "3 h 05 min" or "2 d 4 h", rounded to the minute.

    Business hours are never written as days: "2,714 h 10 min".
    """
    if seconds is None:
        return NO_VALUE
    minutes = round(seconds / 60)
    if minutes < 60:
        return t.gettext("{minutes} min", minutes=format_decimal(minutes, locale=t.locale))
    hours, minutes = divmod(minutes, 60)
    if hours < 24 or business_hours:
        return t.gettext(
            "{hours} h {minutes} min",
            hours=format_decimal(hours, locale=t.locale),
            minutes=f"{minutes:02d}",
        )
    days, hours = divmod(hours, 24)
    return t.gettext("{days} d {hours} h", days=format_decimal(days, locale=t.locale), hours=hours)


def text_table(section: Section, t: Translator) -> list[str]:
    """The section as aligned lines of plain text: names to the left, figures to the right."""
    cells = [section.header, *[[format_cell(cell, t) for cell in row] for row in section.rows]]
    widths = [max(len(row[column]) for row in cells) for column in range(len(section.header))]
    numeric = [not isinstance(cell, str) for cell in section.rows[0]] if section.rows else []
    lines = []
    for row in cells:
        parts = [
            value.rjust(width) if numeric and numeric[column] else value.ljust(width)
            for column, (value, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(parts).rstrip())
    return lines


def report_text(report: DigestReport, t: Translator) -> str:
    """The whole digest as text for a terminal."""
    lines = [f"{report.title}: {report.period}"]
    for section in report.sections:
        lines.extend(["", section.title, *text_table(section, t)])
    return "\n".join(lines) + "\n"
