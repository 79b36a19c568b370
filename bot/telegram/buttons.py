"""Button presses on a card (Claim, Take over, Status, Priority, Customer) and on a held reply.

Every press is answered with answerCallbackQuery exactly once, so the
person's client stops its spinner: with the reason when nothing changed,
empty when the change shows on the card. Status and Priority first swap
the card's buttons for the choices, and a choice swaps them back. Take over
first swaps them for a question that names the owner, where Slack shows a
confirmation dialog. Each swap back draws the buttons for the ticket as the
database has it after the change (its status and owner).
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime

from telegram import CallbackQuery, InlineKeyboardMarkup, Message
from telegram.error import BadRequest

from bot.slack.blocks import CLOSED
from bot.slack.control_values import INVALID_CONTROL_ANSWER
from bot.telegram.context import TelegramDesk, person_label
from bot.telegram.drafts import load_draft, send_draft, undo_draft
from bot.telegram.messenger import NOT_MODIFIED
from bot.telegram.more_commands import customer_of_ticket_text
from bot.telegram.render import (
    BACK,
    CLAIM,
    CUSTOMER,
    PRIORITY,
    SEND_DRAFT,
    STATUS,
    TAKE_OVER,
    UNDO_DRAFT,
    ButtonPress,
    card_keyboard,
    choice_keyboard,
    draft_id,
    owner_tag,
    read_button,
    take_over_keyboard,
)
from bot.telegram.texts import CALLBACK_ANSWER_LIMIT, cut_text
from handlers.i18n import N_, Translator
from handlers.people import Actor
from handlers.ticket_actions import (
    Feedback,
    claim_ticket,
    held_by_other,
    refusal_for_stranger,
    set_priority,
    set_status,
    take_over_ticket,
)
from store.tickets import find_ticket_by_number

logger = logging.getLogger(__name__)

ONLY_AUTHOR = N_("Only {name} can send or undo this reply.")


@dataclass
class Press:
    """One button press and whether it has been answered yet."""

    query: CallbackQuery
    desk: TelegramDesk
    translator: Translator
    answered: bool = field(default=False)

    def answer(self, text: str = "", alert: bool = False) -> None:
        """Answer the press once; later calls do nothing."""
        if self.answered:
            return
        self.answered = True
        shown = cut_text(text, CALLBACK_ANSWER_LIMIT)[0] if text else None
        self.desk.runner.call(self.query.answer(text=shown, show_alert=alert))


def handle_press(desk: TelegramDesk, query: CallbackQuery) -> None:
    """Act on one button press and answer it, whatever happens."""
    press = Press(query, desk, desk.translator(query.from_user))
    try:
        _act(desk, press)
    finally:
        press.answer()


def _act(desk: TelegramDesk, press: Press) -> None:
    query, t = press.query, press.translator
    button = read_button(query.data)
    if button is None:
        logger.warning("telegram: press with data %r that threaddesk did not write", query.data)
        press.answer(t.gettext(INVALID_CONTROL_ANSWER), alert=True)
        return
    actor = desk.actor(query.from_user)
    if actor is None:
        logger.info("ticket #%d: press by a Telegram user not in rules.yaml", button.number)
        press.answer(refusal_for_stranger().render(t), alert=True)
        return
    if button.action in (SEND_DRAFT, UNDO_DRAFT):
        _draft_press(desk, press, button)
        return
    _card_press(desk, press, button, actor)


def _card_press(desk: TelegramDesk, press: Press, button: ButtonPress, actor: Actor) -> None:
    t = press.translator
    if button.action == CLAIM:
        feedback = claim_ticket(desk.session_factory, actor, button.number)
        press.answer(feedback.render(t), alert=not feedback.ok)
        desk.after(feedback)
    elif button.action == TAKE_OVER:
        _take_over_press(desk, press, button, actor)
    elif button.action == CUSTOMER:
        press.answer()
        _post_under_card(
            press, customer_of_ticket_text(desk.session_factory, actor, button.number, t)
        )
    elif button.action in (STATUS, PRIORITY) and button.value is None:
        _swap_keyboard(press, choice_keyboard(button.action, button.number, t))
    elif button.action in (STATUS, PRIORITY):
        if button.action == STATUS:
            feedback = set_status(
                desk.session_factory, actor, button.number, button.value or "", desk.rules
            )
        else:
            feedback = set_priority(
                desk.session_factory, actor, button.number, button.value or "", desk.rules
            )
        _swap_keyboard(press, _current_keyboard(desk, button.number, t))
        press.answer("" if feedback.ok else feedback.render(t), alert=not feedback.ok)
        desk.after(feedback)
    elif button.action == BACK:
        _swap_keyboard(press, _current_keyboard(desk, button.number, t))


def _take_over_press(desk: TelegramDesk, press: Press, button: ButtonPress, actor: Actor) -> None:
    """Show the Take over question, or, on Yes, take the ticket from the owner it named.

    Yes names that owner by a tag. When the ticket has changed hands since
    the question, nothing moves and the presser learns who owns it now.
    """
    t = press.translator
    owner, claimed_at = _owner_of(desk, button.number)
    if owner is None:
        # Released, closed or deleted since the card was drawn: the current buttons show the way.
        _swap_keyboard(press, _current_keyboard(desk, button.number, t))
        return
    if button.value is None and actor.works_tickets and owner != actor.name:
        _swap_keyboard(press, take_over_keyboard(button.number, owner, t))
        return

    feedback: Feedback
    if button.value is None or button.value == owner_tag(owner):
        # take_over_ticket rejects a department member, and changes nothing for the owner.
        feedback = take_over_ticket(desk.session_factory, actor, button.number, owner)
    else:
        feedback = held_by_other(button.number, owner, claimed_at)
    _swap_keyboard(press, _current_keyboard(desk, button.number, t))
    press.answer(feedback.render(t), alert=not feedback.ok)
    desk.after(feedback)


def _owner_of(desk: TelegramDesk, number: int) -> tuple[str | None, datetime | None]:
    """Return the owner of an open ticket and when they claimed it; None for nobody or closed."""
    with desk.session_factory() as session:
        ticket = find_ticket_by_number(session, number)
        if ticket is None or ticket.status == CLOSED:
            return None, None
        return ticket.assignee, ticket.assigned_at


def _current_keyboard(desk: TelegramDesk, number: int, t: Translator) -> InlineKeyboardMarkup:
    """Return the card's buttons for the ticket as the database has it now."""
    with desk.session_factory() as session:
        ticket = find_ticket_by_number(session, number)
        if ticket is None:
            return card_keyboard(number, t)
        return card_keyboard(number, t, status=ticket.status, owner=ticket.assignee)


def _draft_press(desk: TelegramDesk, press: Press, button: ButtonPress) -> None:
    t = press.translator
    draft = load_draft(desk, draft_id(button))
    if draft is None or draft.number != button.number:
        press.answer(t.gettext(INVALID_CONTROL_ANSWER), alert=True)
        return
    presser = press.query.from_user
    if str(presser.id) != draft.user_id:
        press.answer(t.gettext(ONLY_AUTHOR, name=draft.author_label))
        return
    if button.action == SEND_DRAFT:
        done = send_draft(desk, draft.draft_id, presser)
    else:
        done = undo_draft(desk, draft.draft_id)
    if not done:
        logger.info(
            "ticket #%d: draft %d pressed by %s again; already sent or undone",
            draft.number,
            draft.draft_id,
            person_label(presser),
        )
        press.answer(t.gettext("This reply was already sent or undone."))


def _post_under_card(press: Press, text: str) -> None:
    """Post `text` under the card (in its topic): Telegram has no private answers in a group."""
    if isinstance(press.query.message, Message):
        press.desk.reply_to(press.query.message, text)


def _swap_keyboard(press: Press, keyboard: InlineKeyboardMarkup) -> None:
    message = press.query.message
    if message is None:
        return
    try:
        press.desk.runner.call(
            press.desk.runner.bot.edit_message_reply_markup(
                chat_id=message.chat.id, message_id=message.message_id, reply_markup=keyboard
            )
        )
    except BadRequest as error:
        if NOT_MODIFIED not in error.message.lower():
            raise
        logger.debug("telegram: keyboard of %s was not modified", message.message_id)
