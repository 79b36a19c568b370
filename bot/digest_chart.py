"""The digest's chart: customer messages by hour of day and day of week, as a PNG heat map.

The chart counts customer emails, as the table of busiest hours does, not
tickets: a follow-up is work too. It shows the weekdays the period covers
(all seven from a week on, else those days in the period's order), its colour
scale starts at 0, and a period without mail gets an empty grid with a label.
"""

import logging
from datetime import timedelta
from io import BytesIO

import matplotlib
from babel.dates import get_day_names
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from handlers.digest_report import period_label
from handlers.i18n import Translator
from store.stats import DigestStats, Period

# Draw without a display; the figure is only ever written to PNG.
matplotlib.use("Agg")

logger = logging.getLogger(__name__)

CHART_FILENAME = "digest-load.png"
WEEK_DAYS = 7
# Inches: the title, hour labels and margins, then each weekday's row.
FIGURE_WIDTH = 10
FIGURE_BASE_HEIGHT = 2.0
ROW_HEIGHT = 0.25


def load_chart_png(stats: DigestStats, t: Translator) -> bytes:
    """Draw the load grid of `stats` (weekdays by 24 hours) as a PNG with translated labels."""
    output = BytesIO()
    load_chart_figure(stats, t).savefig(output, format="png")
    return output.getvalue()


def chart_weekdays(period: Period) -> list[int]:
    """Return the weekdays (Monday is 0) the period covers, in the order the chart shows them."""
    if period.days >= WEEK_DAYS:
        return list(range(WEEK_DAYS))
    return [(period.first_day + timedelta(days=offset)).weekday() for offset in range(period.days)]


def load_chart_figure(stats: DigestStats, t: Translator) -> Figure:
    """Lay out the heat map: one row per weekday of the period, one column per local hour."""
    weekdays = chart_weekdays(stats.period)
    grid = [stats.load[weekday] for weekday in weekdays]
    busiest = max(max(row) for row in grid)
    figure = Figure(
        figsize=(FIGURE_WIDTH, FIGURE_BASE_HEIGHT + ROW_HEIGHT * len(weekdays)), dpi=100
    )
    axes = figure.add_subplot()
    # Without mail the scale would be centred on 0 (-0.1 to 0.1); it starts at 0.
    image = axes.imshow(grid, aspect="auto", cmap="Blues", vmin=0, vmax=max(busiest, 1))

    days = get_day_names("abbreviated", locale=t.locale)
    axes.set_yticks(range(len(weekdays)), [str(days[weekday]) for weekday in weekdays])
    axes.set_xticks(range(0, 24, 2), [f"{hour:02d}" for hour in range(0, 24, 2)])
    axes.set_xlabel(t.gettext("Hour"))
    axes.set_title(
        t.gettext(
            "Customer messages by hour and weekday, {period}",
            period=period_label(stats.period, t),
        )
    )
    if busiest == 0:
        axes.text(
            0.5,
            0.5,
            t.gettext("No customer messages in this period"),
            transform=axes.transAxes,
            ha="center",
            va="center",
        )

    scale = figure.colorbar(image, ax=axes)
    scale.set_label(t.gettext("Customer messages"))
    scale.locator = MaxNLocator(integer=True)
    scale.update_ticks()
    figure.tight_layout()
    return figure
