"""Reply templates: a title and a body in each language, with placeholders.

A placeholder is a name in braces, such as `{customer_name}`. Rendering never
raises: a placeholder whose value is missing, None or unknown renders as
nothing. `{{` and `}}` write literal braces, and a lone brace stays as it is.
Values are inserted once and never expanded again, so a customer who writes
"{agent_name}" in a subject sees exactly that text.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

# The values that intake and the reply modal fill in.
KNOWN_PLACEHOLDERS = (
    "customer_name",
    "customer_email",
    "ticket_number",
    "subject",
    "agent_name",
    "support_name",
    "support_address",
    "next_opening",
)
# Either an escaped brace or a placeholder: braces around text with no brace inside.
TOKEN_PATTERN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")


class Template(BaseModel):
    """A reply template: its title (shown to agents, and the subject of an auto-reply)
    and its body, each keyed by language code ("en", "ru")."""

    model_config = ConfigDict(extra="forbid")

    title: dict[str, str] = Field(default_factory=dict)
    body: dict[str, str] = Field(default_factory=dict)


@dataclass(frozen=True)
class RenderedTemplate:
    title: str
    body: str
    language: str


def render_text(text: str, values: Mapping[str, object]) -> str:
    """Replace each placeholder in `text` with its value; see the module docstring."""

    def substitute(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        value = values.get(match.group(1).strip())
        return "" if value is None else str(value)

    return TOKEN_PATTERN.sub(substitute, text)


def placeholders_in(text: str) -> list[str]:
    """Return the placeholder names used in `text`, in order of first use."""
    names = [
        match.group(1).strip()
        for match in TOKEN_PATTERN.finditer(text)
        if match.group(1) is not None
    ]
    return list(dict.fromkeys(names))


def pick_language(texts: Mapping[str, str], language: str) -> str | None:
    """Return the key of the best text for `language`: that language, else English, else any."""
    for candidate in (language, "en"):
        if texts.get(candidate):
            return candidate
    return next((key for key, text in texts.items() if text), None)


def render_template(
    template: Template, language: str, values: Mapping[str, object]
) -> RenderedTemplate:
    """Render a template's title and body in `language`, falling back as `pick_language` does."""
    body_language = pick_language(template.body, language) or language
    title_language = pick_language(template.title, body_language)
    title = template.title[title_language] if title_language else ""
    body = template.body.get(body_language, "")
    return RenderedTemplate(
        title=render_text(title, values),
        body=render_text(body, values),
        language=body_language,
    )
