"""Build the bolt app that takes agents' clicks, modal submissions, `/desk` and thread messages.

Listeners run after the acknowledgement (bolt's `process_before_response`
is off), so Slack gets its answer within 3 seconds whatever the database or
the mail server is doing.
"""

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from slack_bolt import App
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_sdk import WebClient
from sqlalchemy.orm import Session, sessionmaker

from bot.slack.card_actions import register_card_actions
from bot.slack.context import SlackDesk
from bot.slack.customer_profile import register_customer_profile
from bot.slack.desk_command import register_desk_command
from bot.slack.direct_messages import register_direct_messages
from bot.slack.held_replies import register_held_replies
from bot.slack.people import SlackPeople
from bot.slack.reply_drafts import register_reply_drafts
from bot.slack.reply_modal import register_reply_modal
from bot.slack.thread_messages import register_thread_messages
from bot.slack.typed_replies import register_undo_buttons
from bot.slack.undo import PendingReplies
from handlers.config import Rules
from handlers.people import Directory
from handlers.replies import ReplySettings
from handlers.rules_book import RulesBook

logger = logging.getLogger(__name__)

DEFAULT_API_URL = "https://slack.com/api/"


class _UnusedTokenNotice(logging.Filter):
    """Drop bolt's warning that SLACK_BOT_TOKEN goes unused.

    bolt reads that variable itself and warns when a client is passed too,
    but the client passed in is made from the same token, for its base URL.
    """

    notice = warning_client_prioritized_and_token_skipped()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != self.notice


BOLT_LOGGER = logging.getLogger("slack_bolt")
BOLT_LOGGER.addFilter(_UnusedTokenNotice())


@dataclass(frozen=True)
class SlackCredentials:
    """The app's secrets; they are passed to the SDK and never logged."""

    bot_token: str
    signing_secret: str


# Bolt runs each listener on this pool, and a listener must start to ack. The
# Reply modal's listener waits up to SUBMISSION_WAIT_SECONDS for the reply to
# be queued, so with bolt's default of 5 threads a burst of submissions while
# the database was slow left later requests unacknowledged past 3 seconds.
LISTENER_THREADS = 64


def build_slack_app(
    credentials: SlackCredentials,
    session_factory: sessionmaker[Session],
    directory: Directory,
    rules: Rules | RulesBook,
    reply_settings: ReplySettings,
    wake: Callable[[], None],
    api_url: str = DEFAULT_API_URL,
) -> tuple[App, SlackDesk]:
    """Return the bolt app with every listener, and the state the listeners share.

    `wake` is called after an action that queued outbox work. The token is
    not checked when the app is built; bolt calls auth.test at `api_url` on
    the first request instead. A fixed `rules` (tests, tools) is wrapped in a
    RulesBook of its own.
    """
    book = rules if isinstance(rules, RulesBook) else RulesBook(rules)
    client = WebClient(token=credentials.bot_token, base_url=_with_slash(api_url))
    app = App(
        client=client,
        signing_secret=credentials.signing_secret,
        token_verification_enabled=False,
        process_before_response=False,
        logger=BOLT_LOGGER,
        listener_executor=ThreadPoolExecutor(
            max_workers=LISTENER_THREADS, thread_name_prefix="slack-listener"
        ),
    )
    desk = SlackDesk(
        session_factory=session_factory,
        rules_book=book,
        reply_settings=reply_settings,
        people=SlackPeople(client, directory, book.current),
        wake=wake,
        pending=PendingReplies(book.current.undo_seconds),
    )
    register_card_actions(app, desk)
    register_reply_modal(app, desk)
    register_customer_profile(app, desk)
    register_reply_drafts(app, desk)
    register_held_replies(app, desk)
    register_undo_buttons(app, desk)
    register_desk_command(app, desk)
    register_direct_messages(app, desk)  # before thread messages: bolt runs the first match
    register_thread_messages(app, desk)
    return app, desk


def _with_slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"
