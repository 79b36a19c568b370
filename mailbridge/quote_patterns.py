"""Line tests that recognise quote markers, attribution lines, header blocks and signatures.

Each test looks at one line, or at a few joined lines, and never at the rest of
the message, because `mailbridge.quotes` decides what to fold. The word
lists cover the mail clients and languages seen in customer mail: English,
Russian, Ukrainian, German, French, Spanish, Italian, Dutch, Portuguese,
Danish, Norwegian, Swedish, Finnish, Polish, Czech, Chinese, Japanese and
Korean. Every pattern is anchored and free of nested quantifiers, so a long
line costs linear time.
"""

import re

# "> text", and the Supercite style "AB> text" that some Usenet-era clients write.
_QUOTE = re.compile(r"^\s*(?:>|[A-Z]{1,3}>)")

# A fenced code block in Markdown, whose lines are never markers.
_CODE_FENCE = re.compile(r"^\s*(?:```|~~~)")

# Verbs that end an attribution line such as "On <date>, <name> wrote:".
_ATTRIBUTION_VERBS = (
    "wrote",
    "writes",
    "a écrit",
    "schrieb",
    "geschrieben",
    "escribió",
    "escreveu",
    "ha scritto",
    "scrisse",
    "schreef",
    "geschreven",
    "skrev",
    "kirjoitti",
    "napisał",
    "napisała",
    "napsal",
    "napsala",
    "пишет",
    "написал",
    "написала",
    "пише",
    "написав",
    "写道",
    "寫道",
    "書きました",
    "のメッセージ",
    "작성",
    "a scris",
    "írta",
    "yazdı",
)
_ATTRIBUTION_VERB = re.compile(
    r"(?:^|[\s\"'>)\]])(?:" + "|".join(re.escape(verb) for verb in _ATTRIBUTION_VERBS) + r")",
    re.IGNORECASE,
)
# The line ends the attribution: a colon (ASCII, full-width, or French " :"),
# or the Zoho form "wrote ----".
_ATTRIBUTION_END = re.compile(r"(?:[:：]|wrote\s*-{2,})\s*$", re.IGNORECASE)
# Gmail in some locales, Russian among them, drops the verb:
# "ср, 30 апр. 2025 г. в 15:19, John Doe <doe@example.com>:".
_ADDRESS_COLON_END = re.compile(r"[>)]\s*[:：]\s*$")
# Some clients write only "2013/7/20 Name <addr>" above the quote.
_DATE_NAME_ADDRESS = re.compile(r"^\d{4}[/.-]\d{1,2}[/.-]\d{1,2}\b.*<[^<>\s]+@[^<>\s]+>$")
_DATE_TOKEN = re.compile(
    r"\b(?:19|20)\d{2}\b|\b\d{1,2}[:.]\d{2}\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b|\d{4}年|\d{4}년"
)
# Words that open an attribution line in the languages listed above.
_ATTRIBUTION_LEADS = re.compile(
    r"^(?:on|le|am|el|em|il|in data|op|den|dnia|dne|w dniu|på|at|ons|в|"
    r"de|da|lähetetty|el día|le jour)\b",
    re.IGNORECASE,
)
_MAX_ATTRIBUTION_CHARS = 400
# The last character of every attribution form above, once trailing blanks are stripped.
_ATTRIBUTION_LAST_CHARACTERS = frozenset(":：->")
_TWO_DIGITS = re.compile(r"\d\d")

# "-----Original Message-----", "-------- Пересылаемое сообщение --------",
# "---------- Forwarded message ---------", "---- On <date> <addr> wrote ----".
_DASH_WRAPPED = re.compile(r"^\s*-{2,}\s*(?P<inner>[^-].{0,150}?)\s*-{2,}\s*$")
_DASH_WRAPPED_WORDS = re.compile(
    r"original|forward|message|wrote|origine|nachricht|mensaje|mensagem|messaggio|"
    r"besked|meddelande|melding|viesti|wiadomość|wiadomosc|zpráva|bericht|"
    r"сообщение|письмо|повідомлення|邮件|郵件|メッセージ|메시지",
    re.IGNORECASE,
)
_FORWARD_INTRO = re.compile(
    r"^\s*(?:begin forwarded message|forwarded message|início da mensagem encaminhada|"
    r"anfang der weitergeleiteten nachricht|début du message réexpédié|"
    r"начало переадресованного сообщения)\s*:?\s*$",
    re.IGNORECASE,
)

# A line made of one repeated punctuation character, as clients and people draw
# rules: "________", "-----", "=====", "*****", "#####", "~~~~~", "+++++".
# U+1427 alone on a line also counts: it ends some Gmail replies as a tracking mark.
_SEPARATOR = re.compile(r"^\s*(?:_{2,}|-{3,}|={3,}|\*{3,}|#{3,}|~{3,}|\+{3,}|—+|ᐧ)\s*$")
# RFC 3676 makes "-- " the signature delimiter, but many clients drop the space.
_SIGNATURE_DELIMITER = re.compile(r"^--\s*$")
# "-Abhishek Kona": a sign-off written as a dash glued to a name.
_DASH_NAME = re.compile(r"^-{1,2}[^\W\d_][\w.' ]{0,40}$")

_HEADER_LABELS: dict[str, tuple[str, ...]] = {
    "from": (
        "from",
        "von",
        "de",
        "da",
        "fra",
        "från",
        "van",
        "od",
        "от",
        "від",
        "lähettäjä",
        "feladó",
        "kimden",
        "expéditeur",
        "remitente",
        "发件人",
        "寄件者",
        "差出人",
        "보낸 사람",
    ),
    "date": (
        "sent",
        "date",
        "datum",
        "gesendet",
        "envoyé",
        "enviado",
        "enviada",
        "inviato",
        "data",
        "sendt",
        "skickat",
        "verzonden",
        "wysłano",
        "odesláno",
        "отправлено",
        "дата",
        "надіслано",
        "lähetetty",
        "päivämäärä",
        "发送时间",
        "日期",
        "送信日時",
        "日付",
        "보낸 날짜",
        "tarih",
    ),
    "to": (
        "to",
        "an",
        "à",
        "a",
        "para",
        "til",
        "till",
        "aan",
        "do",
        "komu",
        "кому",
        "vastaanottaja",
        "收件人",
        "宛先",
        "받는 사람",
        "kime",
        "cc",
        "kopie",
        "копия",
    ),
    "subject": (
        "subject",
        "betreff",
        "objet",
        "asunto",
        "oggetto",
        "assunto",
        "emne",
        "ämne",
        "onderwerp",
        "temat",
        "předmět",
        "тема",
        "aihe",
        "主题",
        "主旨",
        "件名",
        "제목",
        "konu",
    ),
    "reply-to": ("reply-to", "risposta", "antwort an", "répondre à", "responder a"),
}
_LABEL_TO_KIND = {label: kind for kind, labels in _HEADER_LABELS.items() for label in labels}
_HEADER_LINE = re.compile(
    r"^\s*\*{0,2}(?P<label>"
    + "|".join(re.escape(label) for label in sorted(_LABEL_TO_KIND, key=len, reverse=True))
    + r")\*{0,2}\s?[:：]",
    re.IGNORECASE,
)

# Mobile and webmail signatures: a verb, a preposition, then the device or app
# within the next few words ("Sent from my iPhone", "Отправлено с iPhone").
_DEVICE_WORDS = (
    r"iphone|ipad|ipod|android|blackberry|mobile|mobil|cell|phone|smartphone|samsung|"
    r"galaxy|htc|nokia|huawei|xiaomi|pixel|windows|outlook|mail|mailbox|airmail|yahoo|"
    r"aol|gmail|tablet|device|spark|bluemail|k-9|proton|sparrow|"
    r"айфон|iphone|мобильн|телефон|устройств|почты|почта|планшет"
)
_MOBILE_SIGNATURE = re.compile(
    r"^\W{0,3}(?:sent|envoyé|gesendet|enviado|enviada|inviato|verzonden|sendt|skickat|"
    r"lähetetty|wysłane|odesláno|отправлено|надіслано|get(?= outlook))"
    r"\s+(?:(?:from|with|via|using|de|depuis|à partir de|von|desde|do|dal|da|vanaf|met|"
    r"fra|från|z|ze|с|со|из|з|for)\s+)?"
    r"(?:[^\s,.;:!?]+\s+){0,3}?\W{0,2}(?:" + _DEVICE_WORDS + r")"
    r"[\w\-.®™ ]{0,25}"
    r"(?:<[^<>]*>|\([^()]*\)|\[[^\[\]]*\]\([^()]*\)|https?://\S+)?\W*$",
    re.IGNORECASE,
)
_MOBILE_SIGNATURE_OTHER = re.compile(
    r"^(?:von meinem .{1,40} gesendet|diese nachricht wurde von meinem .{1,60} gesendet|"
    r"從我的 ?iphone ?傳送|发自我的 ?iphone|iphoneから送信|나의 ?iphone에서 보냄|"
    r"<<sent by .{1,30}>>|\(sent from .{1,30}\))\W*$",
    re.IGNORECASE,
)
_MAX_MOBILE_SIGNATURE_CHARS = 90


def is_quote(line: str) -> bool:
    """Return True for a line of quoted history ("> text" or "AB> text")."""
    return _QUOTE.match(line) is not None


def is_code_fence(line: str) -> bool:
    return _CODE_FENCE.match(line) is not None


def is_attribution_text(text: str) -> bool:
    """Return True for an attribution such as "On <date>, <name> wrote:" in any known form."""
    text = text.strip().lstrip("-").strip()
    if not text or len(text) > _MAX_ATTRIBUTION_CHARS:
        return False
    # Every form ends with a colon, a dash or ">": most lines are ruled out by their last character.
    if text[-1] not in _ATTRIBUTION_LAST_CHARACTERS:
        return False
    if _ATTRIBUTION_END.search(text) and _ATTRIBUTION_VERB.search(text):
        return "@" in text or _DATE_TOKEN.search(text) is not None
    if _ADDRESS_COLON_END.search(text) and "@" in text:
        return _DATE_TOKEN.search(text) is not None
    return _DATE_NAME_ADDRESS.match(text) is not None


def may_end_attribution(line: str) -> bool:
    """Return True when a line could be the last line of an attribution."""
    text = line.rstrip()
    if len(text) > _MAX_ATTRIBUTION_CHARS or text[-1:] not in _ATTRIBUTION_LAST_CHARACTERS:
        return False
    return (
        _ATTRIBUTION_END.search(text) is not None
        or _DATE_NAME_ADDRESS.match(text.strip()) is not None
    )


def starts_like_attribution(line: str) -> bool:
    """Return True when a line could open a wrapped attribution: a lead word or a date."""
    text = line.strip().lstrip("-").strip()
    if _ATTRIBUTION_LEADS.match(text) is not None:
        return True
    # Every date form has two digits in a row; searching for those first is quicker.
    return _TWO_DIGITS.search(text) is not None and _DATE_TOKEN.search(text) is not None


def is_original_message_line(line: str) -> bool:
    """Match "-----Original Message-----" and its forwarded and localized forms."""
    match = _DASH_WRAPPED.match(line)
    if match is not None and _DASH_WRAPPED_WORDS.search(match.group("inner")):
        return True
    return _FORWARD_INTRO.match(line) is not None


def is_separator(line: str) -> bool:
    return _SEPARATOR.match(line) is not None


def is_signature_delimiter(line: str) -> bool:
    return _SIGNATURE_DELIMITER.match(line) is not None


def is_dash_name(line: str) -> bool:
    return _DASH_NAME.match(line.strip()) is not None


def header_kind(line: str) -> str | None:
    """Return the kind of an email header line ("from", "date", "to", "subject"), else None."""
    match = _HEADER_LINE.match(line)
    if match is None:
        return None
    return _LABEL_TO_KIND[match.group("label").lower()]


def is_mobile_signature(line: str) -> bool:
    """Match one-line signatures that phones and mail apps append ("Sent from my iPhone")."""
    text = line.strip()
    if not text or len(text) > _MAX_MOBILE_SIGNATURE_CHARS:
        return False
    return (
        _MOBILE_SIGNATURE.match(text) is not None or _MOBILE_SIGNATURE_OTHER.match(text) is not None
    )
