"""Private answers to the person who acted: an ephemeral message, or a response URL's message."""

import logging
from typing import Protocol

from slack_bolt import Respond
from slack_sdk.errors import SlackApiError

from bot.slack.blocks import Block, private_message
from bot.slack.people import SlackPeople

logger = logging.getLogger(__name__)


class Answer(Protocol):
    """Show `text` to one person; `extra_blocks` (such as buttons) follow the text."""

    def __call__(self, text: str, extra_blocks: list[Block] | None = None) -> None: ...


def ephemeral_answer(
    people: SlackPeople, channel: str, user_id: str, thread_ts: str | None = None
) -> Answer:
    """Answer with an ephemeral message in `channel` (in the thread `thread_ts`, if given)."""

    def answer(text: str, extra_blocks: list[Block] | None = None) -> None:
        message = private_message(text)
        try:
            people.client.chat_postEphemeral(
                channel=channel,
                user=user_id,
                text=message.text,
                blocks=message.blocks + (extra_blocks or []),
                thread_ts=thread_ts,
            )
        except SlackApiError as error:
            logger.warning(
                "user %s: private answer in %s failed: %s",
                user_id,
                channel,
                error.response.get("error"),
            )

    return answer


def response_url_answer(respond: Respond, user_id: str, replace: bool = False) -> Answer:
    """Answer through the request's response URL, which works in any conversation.

    With `replace`, the answer takes the place of the ephemeral message whose
    button was clicked.
    """

    def answer(text: str, extra_blocks: list[Block] | None = None) -> None:
        message = private_message(text)
        try:
            respond(
                text=message.text,
                blocks=message.blocks + (extra_blocks or []),
                response_type="ephemeral",
                replace_original=replace,
            )
        except Exception as error:  # the response URL may have expired; nothing else to do
            logger.warning("user %s: command response failed: %s", user_id, error)

    return answer
