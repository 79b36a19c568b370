"""Check at start that the bot can reach and work in the chats rules.yaml names.

A wrong `telegram.support_chat`, or a bot that was never added to the group,
shows otherwise only as a delivery error repeated every few seconds. So each
chat is read once (getChat), with the bot's own membership in it
(getChatMember), and a problem is logged as an error that names the chat
and the fix. Nothing here stops the start: Slack may still work, and
the group may be fixed while threaddesk runs.
"""

import logging

from telegram import ChatMember, ChatMemberAdministrator, ChatMemberRestricted
from telegram.error import TelegramError

from bot.telegram.runner import BotRunner

logger = logging.getLogger(__name__)

SUPPORT_CHAT = "support_chat"
DIGEST_CHAT = "digest_chat"


def check_chats(runner: BotRunner, support_chat: int | None, digest_chat: int | None) -> int:
    """Check the support chat and the digest chat, if set; return the number of problems."""
    problems = 0
    if support_chat is not None:
        problems += check_chat(runner, support_chat, SUPPORT_CHAT)
    if digest_chat is not None and digest_chat != support_chat:
        problems += check_chat(runner, digest_chat, DIGEST_CHAT)
    return problems


def check_chat(runner: BotRunner, chat_id: int, setting: str) -> int:
    """Check one chat; log what is wrong with it and return 1, or return 0 when the bot can work."""
    try:
        chat = runner.call(runner.bot.get_chat(chat_id))
    except TelegramError as error:
        logger.error(
            "telegram: chat %s (telegram.%s in rules.yaml) cannot be reached: %s. "
            "Check the id (a supergroup's id starts with -100) and add the bot to that group.",
            chat_id,
            setting,
            _without_chat_advice(error.message, chat_id),
        )
        return 1
    try:
        member = runner.call(runner.bot.get_chat_member(chat_id, runner.bot.id))
    except TelegramError as error:
        logger.error(
            "telegram: chat %s (telegram.%s in rules.yaml): the bot's rights there could not be "
            "read: %s. Make sure the bot is a member of that group.",
            chat_id,
            setting,
            error.message,
        )
        return 1
    problem = _membership_problem(member, setting == SUPPORT_CHAT and bool(chat.is_forum))
    if problem is not None:
        logger.error("telegram: chat %s (telegram.%s in rules.yaml): %s", chat_id, setting, problem)
        return 1
    logger.info(
        "telegram: chat %s (telegram.%s) reached: %s, the bot is %s",
        chat_id,
        setting,
        chat.title or chat.type,
        member.status,
    )
    return 0


def _without_chat_advice(reason: str, chat_id: int) -> str:
    """Drop the "(chat N: check that id ...)" that bot/telegram/runner.py adds to "chat not found".

    The log line gives that advice itself, with the -100 hint, so it appears once.
    """
    cut = reason.find(f" (chat {chat_id}:")
    return reason[:cut].rstrip() if cut >= 0 else reason


def _membership_problem(member: ChatMember, needs_topics: bool) -> str | None:
    """Say what keeps the bot from working in the chat, or return None when nothing does."""
    if member.status in (ChatMember.LEFT, ChatMember.BANNED):
        return "the bot is not a member of this group. Add the bot to the group."
    if isinstance(member, ChatMemberRestricted) and not member.can_send_messages:
        return "the bot may not send messages in this group. Lift its restriction."
    if needs_topics and not (
        member.status == ChatMember.OWNER
        or (isinstance(member, ChatMemberAdministrator) and member.can_manage_topics)
    ):
        return (
            "the group has topics, but the bot cannot open them. Make the bot an admin of the "
            "group with the Manage topics right."
        )
    return None
