"""Message catalogues (gettext, through Babel) for English and Russian.

The catalogues are kept as .po files only and compiled in memory when first
used, so the repository contains no generated binaries and an editable install
needs no build step.
"""

from collections.abc import Callable
from datetime import datetime
from functools import cache
from io import BytesIO
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "threaddesk"
SUPPORTED_LOCALES = ("en", "ru")
DEFAULT_LOCALE = "en"


def N_(message: str) -> str:
    """Mark a message for extraction where it is defined and translated later."""
    return message


def supported_locale(locale: str | None) -> str:
    """Return the supported language for a locale name such as "ru_RU", else English."""
    if not locale:
        return DEFAULT_LOCALE
    language = locale.replace("-", "_").split("_")[0].lower()
    return language if language in SUPPORTED_LOCALES else DEFAULT_LOCALE


@cache
def translations(locale: str) -> Translations:
    language = supported_locale(locale)
    po_path = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    with po_path.open("rb") as po_file:
        catalog = read_po(po_file, locale=language, domain=DOMAIN)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


# CLDR date patterns, by locale, for `Translator.weekday_time`.
WEEKDAY_TIME_PATTERNS = {"en": "EEEE, MMMM d, HH:mm", "ru": "EEEE, d MMMM, HH:mm"}


class Translator:
    """Translated text and locale-aware formatting for one reader."""

    def __init__(self, locale: str | None, timezone: str = "UTC") -> None:
        self.locale = supported_locale(locale)
        self.timezone = ZoneInfo(timezone)
        self._catalog = translations(self.locale)

    def gettext(self, message: str, **params: object) -> str:
        text = self._catalog.gettext(message)
        return text.format(**params) if params else text

    def ngettext(self, singular: str, plural: str, count: int, **params: object) -> str:
        text = self._catalog.ngettext(singular, plural, count)
        return text.format(count=count, **params)

    def weekday_time(self, value: datetime) -> str:
        """Format a moment for a customer, with the weekday and no seconds.

        For example "Monday, December 7, 09:00" or "понедельник, 7 декабря, 09:00".
        """
        pattern = WEEKDAY_TIME_PATTERNS.get(self.locale, WEEKDAY_TIME_PATTERNS["en"])
        return format_datetime(
            value, format=pattern, tzinfo=self.timezone, locale=Locale.parse(self.locale)
        )

    def datetime(self, value: datetime) -> str:
        """Format a moment in the reader's time zone with its UTC offset.

        For example "Dec 3, 2026, 9:12 AM GMT+03:00", so that a colleague in
        another zone reads the time right. Seconds are left out.
        """
        return format_datetime(
            value, format=_moment_pattern(self.locale), tzinfo=self.timezone, locale=self.locale
        )

    def size(self, size_in_bytes: int) -> str:
        """Format a file size with binary units, e.g. "1.5 MiB" (or "1,5 МиБ")."""
        units = (N_("{value} B"), N_("{value} KiB"), N_("{value} MiB"), N_("{value} GiB"))
        value = float(size_in_bytes)
        unit_index = 0
        while value >= 1024 and unit_index < len(units) - 1:
            value /= 1024
            unit_index += 1
        unit = units[unit_index]
        pattern = "#,##0" if value >= 100 or unit == units[0] else "#,##0.#"
        number = format_decimal(value, format=pattern, locale=self.locale)
        return self.gettext(unit, value=number)


GettextFunction = Callable[[str], str]


@cache
def _moment_pattern(locale_name: str) -> str:
    """Return the locale's medium date and short time pattern, followed by the GMT offset."""
    locale = Locale.parse(locale_name)
    date_pattern = locale.date_formats["medium"].pattern
    time_pattern = locale.time_formats["short"].pattern
    combined = str(locale.datetime_formats["medium"])
    return combined.replace("{1}", date_pattern).replace("{0}", time_pattern) + " ZZZZ"
