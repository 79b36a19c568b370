"""Every message a person reads is in both catalogues, with the same placeholders."""

import string
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

from handlers.i18n import LOCALE_DIR, SUPPORTED_LOCALES, Translator

REPO_ROOT = Path(__file__).resolve().parent.parent
SOURCE_PACKAGES = ("bot", "handlers", "mailbridge", "store")


def extracted_messages() -> set[str]:
    keywords = {**DEFAULT_KEYWORDS, "N_": None}
    messages: set[str] = set()
    for package in SOURCE_PACKAGES:
        for _, _, message, _, _ in extract_from_dir(
            REPO_ROOT / package, method_map=[("**.py", "python")], keywords=keywords
        ):
            messages.add(message[0] if isinstance(message, tuple) else message)
    return messages


def placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field}


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_catalogue_complete(locale: str) -> None:
    with (LOCALE_DIR / locale / "LC_MESSAGES" / "threaddesk.po").open("rb") as po_file:
        catalogue = read_po(po_file, locale=locale)
    known = {
        message.id[0] if isinstance(message.id, tuple) else message.id for message in catalogue
    }

    missing = extracted_messages() - known

    assert missing == set(), f"run scripts/update_catalogues.py; missing in {locale}: {missing}"


def test_russian_fully_translated() -> None:
    with (LOCALE_DIR / "ru" / "LC_MESSAGES" / "threaddesk.po").open("rb") as po_file:
        catalogue = read_po(po_file, locale="ru")

    for message in catalogue:
        if not message.id:
            continue
        originals = message.id if isinstance(message.id, tuple) else (message.id,)
        translations = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(translations), f"untranslated: {originals[0]!r}"
        assert "fuzzy" not in message.flags, f"fuzzy: {originals[0]!r}"
        for translation in translations:
            assert placeholders(translation) == placeholders(originals[-1]), originals[0]


def test_russian_plural_forms() -> None:
    translator = Translator("ru")

    assert translator.ngettext("… {count} more line", "… {count} more lines", 1) == "… ещё 1 строка"
    assert translator.ngettext("… {count} more line", "… {count} more lines", 3) == "… ещё 3 строки"
    assert (
        translator.ngettext("… {count} more line", "… {count} more lines", 11) == "… ещё 11 строк"
    )


def test_sizes_formatted_per_locale() -> None:
    assert Translator("en").size(1536) == "1.5 KiB"
    assert Translator("ru").size(1536) == "1,5 КиБ"
    assert Translator("ru").size(512) == "512 Б"
