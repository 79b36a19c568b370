"""Repair what the stdlib parser gets wrong on common malformed MIME, after parsing."""

import email.policy
import logging
import re
from email.message import Message
from email.parser import BytesParser

logger = logging.getLogger(__name__)

LOOSE_BOUNDARY = re.compile(r"""boundary\s*=\s*("([^"]+)"|[^;\s]+)""", re.IGNORECASE)


def repair_unquoted_boundaries(message: Message) -> int:
    """Re-split multiparts whose boundary parameter was written without the quotes it needs.

    Outlook Express wrote `boundary=----=_NextPart_...` unquoted; RFC 2045
    requires quotes around '=', and policy.default then reads the boundary as
    "----" and keeps the whole body as one string. Returns how many were repaired.
    """
    repaired = 0
    for part in list(message.walk()):
        # A multipart whose boundary the parser found already has a list of parts.
        if part.is_multipart() or part.get_content_maintype() != "multipart":
            continue
        payload = part.get_payload()
        if not isinstance(payload, str):
            continue
        boundary = _loose_boundary(_raw_content_type(part))
        if not boundary or f"--{boundary}" not in payload:
            continue
        _resplit(part, boundary, payload)
        repaired += 1
    return repaired


def _raw_content_type(part: Message) -> str:
    # The parsed header object already holds the truncated boundary.
    for key, value in part.raw_items():
        if key.lower() == "content-type":
            return str(value)
    return ""


def _loose_boundary(content_type: str) -> str | None:
    match = LOOSE_BOUNDARY.search(content_type)
    if match is None:
        return None
    return (match.group(2) or match.group(1)).strip()


def _resplit(part: Message, boundary: str, payload: str) -> None:
    header = f'Content-Type: {part.get_content_type()}; boundary="{boundary}"\r\n\r\n'
    body = payload.encode("utf-8", errors="surrogateescape")
    container = BytesParser(policy=email.policy.default).parsebytes(header.encode() + body)
    if not isinstance(container.get_payload(), list):
        return
    part.set_payload(container.get_payload())
    part.set_boundary(boundary)
    part.preamble = container.preamble
    part.epilogue = container.epilogue
