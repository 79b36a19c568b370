"""The digest's chart: customer messages by hour of day and day of week, as a PNG heat map."""

import logging
from io import BytesIO

import matplotlib
from babel.dates import get_day_names
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from handlers.digest_report import period_label
from handlers.i18n import Translator
from store.stats import DigestStats

# Draw without a display; the figure is only ever written to PNG.
matplotlib.use("Agg")

logger = logging.getLogger(__name__)

CHART_FILENAME = "digest-load.png"


def load_chart_png(stats: DigestStats, t: Translator) -> bytes:
    """Draw the load grid of `stats` (7 weekdays by 24 hours) with translated labels."""
    figure = Figure(figsize=(10, 3.6), dpi=100)
    axes = figure.add_subplot()
    image = axes.imshow(stats.load, aspect="auto", cmap="Blues", vmin=0)
    days = get_day_names("abbreviated", locale=t.locale)
    axes.set_yticks(range(7), [str(days[weekday]) for weekday in range(7)])
    axes.set_xticks(range(0, 24, 2), [f"{hour:02d}" for hour in range(0, 24, 2)])
    axes.set_xlabel(t.gettext("Hour"))
    axes.set_title(
        t.gettext("Customer messages by hour, {period}", period=period_label(stats.period, t))
    )
    scale = figure.colorbar(image, ax=axes)
    scale.locator = MaxNLocator(integer=True)
    scale.update_ticks()
    figure.tight_layout()
    output = BytesIO()
    figure.savefig(output, format="png")
    return output.getvalue()
