"""The destinations of a desk's digests: the Slack digest channel and Telegram digest chat.

Each is used when rules.yaml sets it.

The scheduled job builds the list again at every run, so a digest channel or chat added
to rules.yaml, or taken out, counts from the next run.
"""

from collections.abc import Callable

from slack_sdk import WebClient

from bot.slack.digest_post import slack_digest_destination
from bot.telegram.digest_post import telegram_digest_destination
from bot.telegram.pacing import Pacer
from bot.telegram.runner import BotRunner
from handlers.config import Rules
from handlers.digest import DigestDestination

DestinationsOf = Callable[[Rules], list[DigestDestination]]


def digest_destinations(
    slack: WebClient | None, telegram: BotRunner | None, pacer: Pacer | None = None
) -> DestinationsOf | None:
    """Return the function that lists the digest destinations of rules, or None without messengers.

    `slack` and `telegram` are the clients of the messengers the desk runs;
    `pacer` keeps the digest's Telegram sends to the chat's pace.
    """
    if slack is None and telegram is None:
        return None
    telegram_pacer = pacer or Pacer()

    def destinations(rules: Rules) -> list[DigestDestination]:
        found: list[DigestDestination] = []
        if slack is not None:
            slack_channel = slack_digest_destination(slack, rules)
            if slack_channel is not None:
                found.append(slack_channel)
        if telegram is not None:
            telegram_chat = telegram_digest_destination(telegram, rules, telegram_pacer)
            if telegram_chat is not None:
                found.append(telegram_chat)
        return found

    return destinations
