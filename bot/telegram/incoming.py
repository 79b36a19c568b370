"""The text of a person's Telegram message, with the targets of its links, and its file.

Telegram shows a formatted link ("here" pointing at a URL) as its label
only; the URL is in the message's entities, not in its text. Replies and
comments leave Telegram as plain text, so each such link is written as
"label (URL)". Plain URLs are in the text already and stay as typed.

Files sent in a ticket's thread are not stored yet: a comment names them,
so that colleagues in the other messengers see that something was shared.
"""

from telegram import Message, MessageEntity
from telegram.ext import filters

from handlers.i18n import N_, Translator

# The messages with a file that the bot takes in a ticket's thread (stickers are chat, not files).
FILES = (
    filters.PHOTO
    | filters.Document.ALL
    | filters.VIDEO
    | filters.AUDIO
    | filters.VOICE
    | filters.ANIMATION
    | filters.VIDEO_NOTE
)
FILE_LINE = N_("[file: {name}, not stored]")
# Words for a file that has no name of its own.
PHOTO = N_("photo")
VIDEO = N_("video")
AUDIO = N_("audio")
VOICE = N_("voice message")
VIDEO_NOTE = N_("video message")
ANIMATION = N_("animation")
DOCUMENT = N_("document")


def typed_text(message: Message) -> str:
    """Return the message's text, or its caption, with each hidden link's URL written out."""
    if message.text is not None:
        return with_link_targets(message.text, message.entities)
    if message.caption is not None:
        return with_link_targets(message.caption, message.caption_entities)
    return ""


def with_link_targets(text: str, entities: tuple[MessageEntity, ...]) -> str:
    """Write "label (URL)" for each text_link entity of `text`.

    Entity offsets count UTF-16 code units, as Telegram does, so the text is
    cut in that encoding. A label that already is its URL is left alone.
    """
    links = sorted(
        (entity for entity in entities if entity.type == MessageEntity.TEXT_LINK and entity.url),
        key=lambda entity: entity.offset,
    )
    if not links:
        return text
    encoded = text.encode("utf-16-le")
    pieces: list[str] = []
    position = 0
    for link in links:
        start, end = link.offset, link.offset + link.length
        if start < position:  # entities of one kind never overlap; skip a malformed one
            continue
        label = encoded[start * 2 : end * 2].decode("utf-16-le", errors="replace")
        pieces.append(encoded[position * 2 : start * 2].decode("utf-16-le", errors="replace"))
        pieces.append(label if label.strip() == link.url else f"{label} ({link.url})")
        position = end
    pieces.append(encoded[position * 2 :].decode("utf-16-le", errors="replace"))
    return "".join(pieces)


def has_file(message: Message) -> bool:
    """Return True when the message carries one of the FILES kinds."""
    return any(
        (
            message.animation,
            message.document,
            message.photo,
            message.video,
            message.audio,
            message.voice,
            message.video_note,
        )
    )


def file_name(message: Message, t: Translator) -> str | None:
    """Name the file the message carries: its file name, else what it is; None without a file."""
    # A GIF comes as both an animation and a document, and "animation" is the precise kind.
    if message.animation is not None:
        return message.animation.file_name or t.gettext(ANIMATION)
    if message.document is not None:
        return message.document.file_name or t.gettext(DOCUMENT)
    if message.photo:
        return t.gettext(PHOTO)
    if message.video is not None:
        return message.video.file_name or t.gettext(VIDEO)
    if message.audio is not None:
        return message.audio.file_name or t.gettext(AUDIO)
    if message.voice is not None:
        return t.gettext(VOICE)
    if message.video_note is not None:
        return t.gettext(VIDEO_NOTE)
    return None


def file_line(message: Message, t: Translator) -> str | None:
    """Return the line a comment adds for the message's file, or None without a file."""
    name = file_name(message, t)
    return t.gettext(FILE_LINE, name=name) if name is not None else None


def is_reply_command(text: str) -> bool:
    """Return True for text that starts with `/reply` (or `/reply@somebot`)."""
    words = text.split(maxsplit=1)
    if not words or not words[0].startswith("/"):
        return False
    return words[0][1:].split("@", 1)[0].lower() == "reply"
