"""Build the messenger-neutral views of tickets and messages from stored rows."""

from handlers.collisions import replying_agents
from handlers.i18n import Translator
from handlers.messenger import AttachmentView, MessageView, TicketCard
from handlers.note_texts import describe_note
from handlers.questions import waiting_departments
from handlers.sla import sla_card_lines
from store.models import Direction, Message, Ticket


def message_view(message: Message, ticket_number: int, translator: Translator) -> MessageView:
    author_name = message.from_name or message.author or ""
    # Every reply leaves from the support address, which gives the team no information.
    is_ours = message.direction == Direction.OUTBOUND and bool(author_name)
    return MessageView(
        ticket_number=ticket_number,
        direction=message.direction,
        kind=message.kind,
        author_name=author_name,
        author_address="" if is_ours else message.from_address,
        subject=message.subject,
        visible_text=message.visible_text,
        has_quoted_text=bool(message.quoted_text.strip()),
        at=message.sent_at or message.received_at,
        attachments=tuple(
            AttachmentView(
                filename=attachment.filename,
                size=attachment.size,
                is_stored=attachment.sha256 is not None,
                omitted_reason=attachment.omitted_reason,
                sha256=attachment.sha256,
            )
            for attachment in message.attachments
        ),
        notes=tuple(describe_note(note, translator) for note in message.notes),
        row_id=message.id,
        delivery_state=message.delivery_state,
        delivery_error=message.delivery_error,
    )


def ticket_card(
    ticket: Ticket, translator: Translator, linked_ticket_number: int | None = None
) -> TicketCard:
    first = ticket.messages[0] if ticket.messages else None
    primary_address = ticket.customer.addresses[0].address if ticket.customer.addresses else ""
    return TicketCard(
        number=ticket.number,
        subject=ticket.subject,
        customer_name=ticket.customer.name,
        customer_address=primary_address,
        status=ticket.status,
        priority=ticket.priority,
        assignee=ticket.assignee,
        tags=tuple(tag.tag for tag in ticket.tags),
        created_at=ticket.created_at,
        first_message=message_view(first, ticket.number, translator) if first else None,
        linked_ticket_number=linked_ticket_number,
        waiting_for=waiting_departments(ticket),
        replying=replying_agents(ticket),
        extra=sla_card_lines(ticket, translator),
    )
