"""Turn bytes labelled with a MIME charset into text, whatever the label claims."""

import codecs
import logging

from mailbridge.message import ParseNote

logger = logging.getLogger(__name__)

# Labels that mail clients send but Python's codec registry does not know, or
# knows as a narrower charset than the one senders really use.
CHARSET_ALIASES: dict[str, str] = {
    "x-mac-cyrillic": "mac_cyrillic",
    "x-mac-ukrainian": "mac_cyrillic",
    "iso-8859-8-i": "iso8859_8",
    "iso-8859-6-i": "iso8859_6",
    "iso-8859-8-e": "iso8859_8",
    "windows-874": "cp874",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "shift_jis": "cp932",
    "x-sjis": "cp932",
    "big5": "big5hkscs",
    "x-unknown": "",
    "unknown-8bit": "",
    "none": "",
}

FALLBACK_CODEC = "cp1252"
# Charsets whose ASCII bytes do not stand for ASCII text.
SEVEN_BIT_CODECS = frozenset(
    {"iso2022_jp", "iso2022_jp_2", "iso2022_kr", "utf-7", "hz", "utf-16", "utf-32"}
)
NUL = "\x00"


def lookup_codec(label: str | None) -> str | None:
    """Return the Python codec name for a MIME charset label, or None when there is none."""
    if not label:
        return None
    cleaned = label.strip().strip("\"'").lower()
    name = CHARSET_ALIASES.get(cleaned, cleaned)
    if not name:
        return None
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    # Bytes-to-bytes codecs such as base64 or zlib are not charsets.
    if not getattr(info, "_is_text_encoding", True):
        return None
    return info.name


def is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def decode_bytes(data: bytes, label: str | None, notes: list[ParseNote], where: str) -> str:
    """Decode `data` as `label` says, recording in `notes` what had to be guessed or replaced.

    A missing or ASCII label with 8-bit bytes is read as UTF-8 when the bytes
    are valid UTF-8, else as windows-1252. Invalid UTF-8 under a UTF-8 label
    becomes U+FFFD. NUL characters are removed because PostgreSQL text columns
    reject them.
    """
    codec = lookup_codec(label)
    if label and codec is None:
        notes.append(ParseNote("charset-unknown", {"charset": label[:64], "where": where}))
    text = _decode_with(data, codec, notes, where)
    return text.replace(NUL, "")


def _decode_with(data: bytes, codec: str | None, notes: list[ParseNote], where: str) -> str:
    if codec == "iso2022_jp":
        return decode_iso2022jp(data)
    if data.isascii() and codec not in SEVEN_BIT_CODECS:
        return data.decode("ascii")

    if codec is None or codec == "ascii":
        return _decode_guessing(data, notes, where)

    try:
        return data.decode(codec)
    except UnicodeDecodeError:
        notes.append(ParseNote("charset-invalid-bytes", {"charset": codec, "where": where}))
        return data.decode(codec, errors="replace")
    except LookupError:  # a codec that exists but cannot decode, such as some aliases
        return _decode_guessing(data, notes, where)


def _decode_guessing(data: bytes, notes: list[ParseNote], where: str) -> str:
    if is_utf8(data):
        return data.decode("utf-8")
    notes.append(ParseNote("charset-fallback", {"charset": FALLBACK_CODEC, "where": where}))
    return data.decode(FALLBACK_CODEC, errors="replace")


def decode_iso2022jp(data: bytes) -> str:
    """Decode ISO-2022-JP, accepting the Microsoft extensions (NEC row 13, such as №).

    Outlook and Japanese webmail write characters like № in ISO-2022-JP that
    only the Microsoft variant (code page 50220) defines; Python's codec rejects
    them, so those mails are converted to Shift_JIS and read as code page 932.
    """
    try:
        return data.decode("iso2022_jp_ext")
    except UnicodeDecodeError:
        pass
    try:
        return _iso2022jp_to_shift_jis(data).decode("cp932", errors="replace")
    except ValueError:
        return data.decode("iso2022_jp_ext", errors="replace")


def _iso2022jp_to_shift_jis(data: bytes) -> bytes:
    out = bytearray()
    double_byte = False
    index = 0
    while index < len(data):
        if data[index] == 0x1B:
            sequence = data[index + 1 : index + 3]
            double_byte = sequence in (b"$B", b"$@")
            index += 3
            continue
        if double_byte and index + 1 < len(data) and data[index] > 0x20:
            out += _jis_pair_to_shift_jis(data[index], data[index + 1])
            index += 2
            continue
        out.append(data[index])
        index += 1
    return bytes(out)


def _jis_pair_to_shift_jis(first: int, second: int) -> bytes:
    if not (0x21 <= first <= 0x7E and 0x21 <= second <= 0x7E):
        raise ValueError(f"invalid JIS X 0208 pair {first:#x} {second:#x}")
    # JIS X 0208 to Shift_JIS: odd rows map to trail bytes 0x40-0x9E, even rows to 0x9F-0xFC.
    trail = second + 0x1F + (second >= 0x60) if first % 2 else second + 0x7E
    lead = ((first - 0x21) >> 1) + 0x81
    if lead > 0x9F:
        lead += 0x40
    return bytes((lead, trail))
