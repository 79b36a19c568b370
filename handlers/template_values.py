"""Fill a template of rules.yaml for one ticket: the placeholder values and the customer's language.

The Reply modal, `/desk reply N #name` and the rules' auto-replies all fill
templates here, so an agent gets the same text that an auto-reply would send.
"""

from datetime import datetime

from handlers.business_hours import next_opening
from handlers.config import Rules
from handlers.i18n import Translator
from handlers.templates import RenderedTemplate, render_template
from store.models import Ticket

# A text counts as written in a language when at least this share of its letters is
# in that language's script. Otherwise the file's locale is used.
SCRIPT_SHARE = 0.5
# Only the start of a message is read, because a long quoted history adds nothing.
SAMPLE_CHARACTERS = 2000


def customer_language(text: str, default: str) -> str:
    """Return "ru" for a mostly Cyrillic text, "en" for a mostly Latin one, else `default`.

    Customers write in the language they want the reply in, and a Russian
    team often serves English-speaking customers as well.
    """
    letters = [character for character in text[:SAMPLE_CHARACTERS] if character.isalpha()]
    if not letters:
        return default
    cyrillic = sum(1 for character in letters if "\u0400" <= character <= "\u04ff")
    if cyrillic / len(letters) >= SCRIPT_SHARE:
        return "ru"
    latin = sum(1 for character in letters if character.isascii())
    if latin / len(letters) >= SCRIPT_SHARE:
        return "en"
    return default


def template_values(
    ticket: Ticket,
    rules: Rules,
    *,
    language: str,
    now: datetime,
    agent_name: str | None = None,
    support_address: str = "",
) -> dict[str, object]:
    """Return every placeholder's value for `ticket`; a value that is not known is None."""
    addresses = ticket.customer.addresses
    address = addresses[0].address if addresses else None
    return placeholder_values(
        rules,
        language=language,
        now=now,
        # Without a display name, the address's local part reads better than nothing
        # ("Hello marta," rather than "Hello ,"), as help desks commonly do.
        customer_name=ticket.customer.name or (address.split("@")[0] if address else None),
        customer_email=address,
        ticket_number=ticket.number,
        subject=ticket.subject,
        agent_name=agent_name,
        support_address=support_address,
    )


def placeholder_values(
    rules: Rules,
    *,
    language: str,
    now: datetime,
    customer_name: str | None,
    customer_email: str | None,
    ticket_number: int | str | None,
    subject: str,
    agent_name: str | None = None,
    support_address: str = "",
) -> dict[str, object]:
    """Return every placeholder's value from its parts; an empty or unknown value is None."""
    opening = next_opening(rules.business_hours, now) if rules.business_hours else None
    translator = Translator(language, rules.timezone)
    return {
        "customer_name": customer_name or None,
        "customer_email": customer_email or None,
        "ticket_number": ticket_number,
        "subject": subject,
        "agent_name": agent_name,
        "support_name": rules.support_name or None,
        "support_address": support_address or rules.support_address or None,
        "next_opening": translator.weekday_time(opening) if opening is not None else None,
    }


def fill_template(
    rules: Rules,
    name: str,
    ticket: Ticket,
    *,
    customer_text: str,
    now: datetime,
    agent_name: str | None = None,
    support_address: str = "",
) -> RenderedTemplate | None:
    """Render template `name` for `ticket` in the customer's language; None if it does not exist."""
    template = rules.templates.get(name)
    if template is None:
        return None

    language = customer_language(customer_text, rules.locale)
    values = template_values(
        ticket,
        rules,
        language=language,
        now=now,
        agent_name=agent_name,
        support_address=support_address,
    )
    return render_template(template, language, values)
