"""Fetch an oversized IMAP message as its header and text parts, guided by BODYSTRUCTURE.

The rebuilt message keeps the original header and multipart boundaries, so
it parses like the original minus the parts that were left on the server.
Those parts are returned as OmittedPart entries.
"""

import email.header
import email.policy
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from email import message_from_string
from email.parser import BytesHeaderParser
from typing import Any

from imapclient import IMAPClient

from mailbridge.sources import OmittedPart

logger = logging.getLogger(__name__)

KEPT_TEXT_TYPES = frozenset({"text/plain", "text/html"})

# RFC 2045 section 6.8 limits base64 lines to 76 characters, each followed
# by CRLF, so 78 encoded bytes carry 57 decoded ones.
BASE64_DECODED_PER_ENCODED = (57, 78)

_HEADER_FIELDS_OF_BODY = frozenset({b"content-type", b"content-transfer-encoding"})
_EMPTY_BODY_FIELDS = b"Content-Type: text/plain; charset=us-ascii\r\n"
_PATH_SEPARATORS = re.compile(r"[\\/]")
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


@dataclass
class BodyPart:
    """One node of a message's BODYSTRUCTURE (RFC 3501 section 7.4.2).

    `section` is the part specifier used in BODY[section], such as "2" or
    "1.2"; it is "" for the top node of the message. `size` is the encoded
    size in bytes and is 0 for a multipart.
    """

    section: str
    content_type: str
    params: dict[str, str] = field(default_factory=dict)
    encoding: str = "7bit"
    size: int = 0
    disposition: str | None = None
    disposition_params: dict[str, str] = field(default_factory=dict)
    children: list["BodyPart"] = field(default_factory=list)

    @property
    def is_multipart(self) -> bool:
        return self.content_type.startswith("multipart/")

    def leaves(self) -> Iterator["BodyPart"]:
        if not self.is_multipart:
            yield self
            return
        for child in self.children:
            yield from child.leaves()


@dataclass
class PartialFetchPlan:
    """The sections to fetch and the parts that stay on the server."""

    kept: set[str]
    omitted: list[OmittedPart]
    fetch_items: list[str]


def parse_bodystructure(structure: Any, section: str = "") -> BodyPart:
    """Convert imapclient's BODYSTRUCTURE tuples into a BodyPart tree."""
    if isinstance(structure[0], list):
        return _parse_multipart(structure, section)
    return _parse_single(structure, section)


def _parse_multipart(structure: Any, section: str) -> BodyPart:
    children = [
        parse_bodystructure(child, f"{section}.{index}" if section else str(index))
        for index, child in enumerate(structure[0], start=1)
    ]
    # After the subtype comes the optional body-ext-mpart: params, disposition, ...
    params = _pairs(structure[2]) if len(structure) > 2 else {}
    disposition, disposition_params = _disposition(structure[3] if len(structure) > 3 else None)
    return BodyPart(
        section=section,
        content_type=f"multipart/{_text(structure[1]).lower()}",
        params=params,
        disposition=disposition,
        disposition_params=disposition_params,
        children=children,
    )


def _parse_single(structure: Any, section: str) -> BodyPart:
    main_type = _text(structure[0]).lower()
    subtype = _text(structure[1]).lower()
    content_type = f"{main_type}/{subtype}"
    # body-type-text has a line count after the size, and body-type-msg has
    # an envelope, a body and a line count, before the extension data
    # (md5, disposition, language, location) begins.
    if content_type == "message/rfc822":
        extension_start = 10
    elif main_type == "text":
        extension_start = 8
    else:
        extension_start = 7
    disposition_index = extension_start + 1
    raw_disposition = structure[disposition_index] if len(structure) > disposition_index else None
    disposition, disposition_params = _disposition(raw_disposition)
    return BodyPart(
        section=section or "1",
        content_type=content_type,
        params=_pairs(structure[2]),
        encoding=_text(structure[5]).lower() if structure[5] else "7bit",
        size=int(structure[6] or 0),
        disposition=disposition,
        disposition_params=disposition_params,
    )


def _disposition(raw: Any) -> tuple[str | None, dict[str, str]]:
    if raw is None:
        return None, {}
    if isinstance(raw, bytes):
        # pymap 0.36 sends the Content-Disposition field as one string instead
        # of the ("attachment" ("filename" ...)) list that RFC 3501 requires.
        return _parse_disposition_field(_text(raw))
    kind = _text(raw[0]).lower() if raw[0] else None
    params = _pairs(raw[1]) if len(raw) > 1 else {}
    return kind, params


def _parse_disposition_field(value: str) -> tuple[str | None, dict[str, str]]:
    kind, _, rest = value.partition(";")
    params: dict[str, str] = {}
    for item in rest.split(";"):
        name, equals, param_value = item.strip().partition("=")
        if equals:
            params[name.strip().lower()] = param_value.strip().strip('"')
    return kind.strip().lower() or None, params


def _pairs(raw: Any) -> dict[str, str]:
    if not raw:
        return {}
    values = [_text(item) for item in raw]
    return {name.lower(): value for name, value in zip(values[::2], values[1::2], strict=False)}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    try:
        return bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        return bytes(value).decode("latin-1")


def plan_partial_fetch(root: BodyPart, budget: int) -> PartialFetchPlan:
    """Choose the text parts to fetch, in order, while their encoded sizes fit in `budget`."""
    kept: set[str] = set()
    omitted: list[OmittedPart] = []
    used = 0
    for leaf in root.leaves():
        if _is_body_text(leaf) and used + leaf.size <= budget:
            kept.add(leaf.section)
            used += leaf.size
        else:
            omitted.append(describe_omitted(leaf))

    fetch_items = ["BODY.PEEK[HEADER]"]
    if not root.is_multipart:
        if kept:
            fetch_items.append("BODY.PEEK[TEXT]")
        return PartialFetchPlan(kept, omitted, fetch_items)
    for node in _nodes_to_rebuild(root, kept):
        if node is root:
            continue
        # The MIME header of a nested multipart carries its boundary.
        fetch_items.append(f"BODY.PEEK[{node.section}.MIME]")
        if not node.is_multipart:
            fetch_items.append(f"BODY.PEEK[{node.section}]")
    return PartialFetchPlan(kept, omitted, fetch_items)


def _is_body_text(part: BodyPart) -> bool:
    return part.content_type in KEPT_TEXT_TYPES and part.disposition != "attachment"


def _nodes_to_rebuild(node: BodyPart, kept: set[str]) -> Iterator[BodyPart]:
    if not _contains_kept(node, kept):
        return
    yield node
    for child in node.children:
        yield from _nodes_to_rebuild(child, kept)


def _contains_kept(node: BodyPart, kept: set[str]) -> bool:
    return any(leaf.section in kept for leaf in node.leaves())


def describe_omitted(part: BodyPart) -> OmittedPart:
    """List a part that stays on the server, with its decoded name and its estimated size."""
    return OmittedPart(
        filename=decode_filename(part.disposition_params, part.params),
        content_type=part.content_type,
        size=estimate_decoded_size(part),
    )


def estimate_decoded_size(part: BodyPart) -> int:
    """Return the part's size in bytes once decoded, as well as BODYSTRUCTURE reports it.

    A `size` parameter of Content-Disposition (RFC 2183 section 2.7) is the
    sender's own figure and wins. Base64 is estimated from the encoded size,
    and any other encoding reports the encoded size, which is an upper bound.
    """
    declared = part.disposition_params.get("size", "")
    if declared.isdigit():
        return int(declared)
    if part.encoding == "base64":
        decoded, encoded = BASE64_DECODED_PER_ENCODED
        return part.size * decoded // encoded
    return part.size


def decode_filename(disposition_params: dict[str, str], type_params: dict[str, str]) -> str:
    """Decode a part's file name (RFC 2231 and RFC 2047) and keep only its last path element.

    Returns "" for a part without a name.
    """
    fields = [
        "Content-Disposition: attachment" + _param_list(disposition_params),
        "Content-Type: application/octet-stream" + _param_list(type_params),
    ]
    headers = message_from_string("\r\n".join(fields) + "\r\n\r\n", policy=email.policy.compat32)
    name = headers.get_filename() or ""
    if "=?" in name:
        name = str(email.header.make_header(email.header.decode_header(name)))
    name = _CONTROL_CHARACTERS.sub("", name)
    return _PATH_SEPARATORS.split(name)[-1].strip()


def _param_list(params: dict[str, str]) -> str:
    rendered = []
    for name, value in params.items():
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        rendered.append(f'; {name}="{escaped}"')
    return "".join(rendered)


def fetch_partial(
    client: IMAPClient, uid: int, root: BodyPart, budget: int
) -> tuple[bytes, list[OmittedPart]]:
    """Fetch the header and text parts of message `uid` and rebuild a small MIME message.

    Nothing but BODY.PEEK items is fetched, so the message keeps its flags
    and its large parts never leave the server.
    """
    plan = plan_partial_fetch(root, budget)
    response = client.fetch([uid], plan.fetch_items)
    sections = _sections_by_name(response.get(uid, {}))
    header = _ensure_blank_line(sections.get("HEADER", b""))
    if not plan.kept:
        return _strip_body_fields(header) + _EMPTY_BODY_FIELDS + b"\r\n", plan.omitted
    if not root.is_multipart:
        return header + sections.get("TEXT", b""), plan.omitted
    body = _render_multipart(root, header, plan.kept, sections)
    return header + body, plan.omitted


def _sections_by_name(data: dict[bytes, Any]) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for key, value in data.items():
        name = key.decode("ascii", "replace")
        if name.startswith("BODY[") and name.endswith("]"):
            found[name[5:-1]] = bytes(value or b"")
    return found


def _render_multipart(
    node: BodyPart, header: bytes, kept: set[str], sections: dict[str, bytes]
) -> bytes:
    boundary = _boundary(header)
    if boundary is None:
        logger.warning("multipart section %r has no boundary; its parts are dropped", node.section)
        return b""
    delimiter = b"--" + boundary.encode("ascii", "replace")
    chunks: list[bytes] = []
    for child in node.children:
        if not _contains_kept(child, kept):
            continue
        child_header = _ensure_blank_line(sections.get(f"{child.section}.MIME", b""))
        if child.is_multipart:
            child_body = _render_multipart(child, child_header, kept, sections)
        else:
            child_body = sections.get(child.section, b"")
        chunks.append(delimiter + b"\r\n" + child_header + child_body + b"\r\n")
    return b"".join(chunks) + delimiter + b"--\r\n"


def _boundary(header: bytes) -> str | None:
    parsed = BytesHeaderParser(policy=email.policy.compat32).parsebytes(header)
    return parsed.get_boundary()


def _ensure_blank_line(header: bytes) -> bytes:
    if not header:
        return b"\r\n"
    if header.endswith(b"\r\n\r\n") or header.endswith(b"\n\n"):
        return header
    return header.rstrip(b"\r\n") + b"\r\n\r\n"


def _strip_body_fields(header: bytes) -> bytes:
    """Drop Content-Type and Content-Transfer-Encoding, with their folded lines, from a header."""
    kept_lines: list[bytes] = []
    skipping = False
    for line in _header_lines(header):
        if line[:1] in (b" ", b"\t"):
            if not skipping:
                kept_lines.append(line)
            continue
        name = line.split(b":", 1)[0].strip().lower()
        skipping = name in _HEADER_FIELDS_OF_BODY
        if not skipping:
            kept_lines.append(line)
    return b"".join(kept_lines)


def _header_lines(header: bytes) -> Sequence[bytes]:
    lines = header.splitlines(keepends=True)
    while lines and lines[-1].strip() == b"":
        lines.pop()
    return lines
