"""Word the notes that parsing and intake attach to a message, in the reader's language."""

from collections.abc import Mapping

from handlers.i18n import N_, Translator

NOTE_MESSAGES: Mapping[str, str] = {
    "attachment-not-fetched": N_(
        "Attachment {filename} ({size}) was not imported because the message is over the size "
        "limit. The original stays in the mailbox ({source})."
    ),
    "attachment-too-large": N_(
        "Attachment {filename} ({size}) was not stored because it is over the size limit."
    ),
    "message-too-large": N_(
        "This email ({size}) is over the size limit, so only its headers and text were imported. "
        "The original stays in the mailbox (UID {uid})."
    ),
    "parse-failed": N_(
        "This email could not be parsed ({error}); its raw text is shown and the original is kept."
    ),
    "tnef-unreadable": N_(
        "The Outlook attachment {filename} could not be unpacked; it is attached unchanged."
    ),
    "charset-unknown": N_(
        "Part of this email ({where}) declares an unknown character set, {charset}; it was "
        "decoded as well as possible."
    ),
    "charset-invalid-bytes": N_(
        "Part of this email ({where}) is not valid {charset}; the invalid bytes are shown as �."
    ),
    "charset-fallback": N_(
        "Part of this email ({where}) names no usable character set; it was decoded as {charset}."
    ),
    "header-undecodable": N_("The {header} header could not be fully decoded."),
    "body-missing": N_("This email has no text."),
    "value-truncated": N_(
        "The {field} of this email is {length} characters long; only its start is kept."
    ),
    "body-undecodable": N_("The text of this email could not be decoded ({error})."),
    "part-unreadable": N_("A part of this email ({content_type}) could not be read."),
    "part-regenerated": N_(
        "A part of this email ({content_type}) was damaged and was rebuilt from what remained."
    ),
    "boundary-unquoted": N_(
        "This email's MIME boundary is written without the quotes it needs; it was read anyway."
    ),
    "date-invalid": N_("The Date header is invalid ({value}); the arrival time is used instead."),
    "date-zone-unknown": N_(
        "The Date header has an unknown time zone ({value}); the arrival time is used instead."
    ),
    "filename-undecodable": N_("An attachment's file name could not be decoded ({error})."),
    "attachment-undecodable": N_("An attachment could not be decoded ({error})."),
    "nesting-too-deep": N_(
        "This email nests parts more than {depth} levels deep; the deeper parts were not read."
    ),
}

UNKNOWN_NOTE = N_("Problem while reading this email: {code}")
SIZE_PARAMS = frozenset({"size", "max_message_bytes"})


def describe_note(note: Mapping[str, object], translator: Translator) -> str:
    """Return the sentence for a stored note ({"code": ..., "params": {...}})."""
    code = str(note.get("code", ""))
    raw_params = note.get("params")
    params = dict(raw_params) if isinstance(raw_params, Mapping) else {}
    for name in SIZE_PARAMS & params.keys():
        if isinstance(params[name], int):
            params[name] = translator.size(params[name])

    template = NOTE_MESSAGES.get(code)
    if template is None:
        return translator.gettext(UNKNOWN_NOTE, code=code)
    try:
        return translator.gettext(template, **params)
    except (KeyError, IndexError, ValueError):
        return translator.gettext(UNKNOWN_NOTE, code=code)
