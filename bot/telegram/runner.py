"""Run python-telegram-bot's coroutines from threaddesk's threads, on one event loop of their own.

threaddesk's outbox worker and use cases are synchronous; python-telegram-bot
is asynchronous. A BotRunner owns one event loop in a daemon thread and the
one Bot whose HTTP client lives on that loop; the messenger, the listeners
and the Application all go through it.

Telegram's "Chat not found" error does not name the chat. The runner's
requests add the chat id to it, so that a repeated delivery error in the
log points at the setting to fix.
"""

import asyncio
import json
import logging
import threading
import warnings
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any, TypeVar

from telegram import Bot
from telegram.error import RetryAfter
from telegram.request import HTTPXRequest, RequestData

from handlers.messenger import RateLimited

logger = logging.getLogger(__name__)

T = TypeVar("T")
DEFAULT_API_URL = "https://api.telegram.org/bot"
# How long a synchronous caller waits for one Bot API call (getUpdates waits longer itself).
CALL_TIMEOUT_SECONDS = 60.0
CONNECTIONS = 32
CHAT_NOT_FOUND = b"chat not found"
HTTP_BAD_REQUEST = 400

# httpx logs every request's URL at INFO, and a Bot API URL contains the bot's token.
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)


class ChatNamingRequest(HTTPXRequest):
    """An HTTPXRequest whose "Chat not found" errors name the chat of the request."""

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> tuple[int, bytes]:
        status, payload = await super().do_request(url, method, request_data, *args, **kwargs)
        if status != HTTP_BAD_REQUEST or request_data is None:
            return status, payload
        chat = request_data.parameters.get("chat_id")
        if chat is None or CHAT_NOT_FOUND not in payload.lower():
            return status, payload
        return status, with_chat_named(payload, str(chat))


def with_chat_named(payload: bytes, chat: str) -> bytes:
    """Add the chat id and what to check to a Bot API error's description."""
    try:
        answer = json.loads(payload)
    except ValueError:
        return payload
    if not isinstance(answer, dict) or not isinstance(answer.get("description"), str):
        return payload
    answer["description"] += (
        f" (chat {chat}: check that id in rules.yaml, and that the bot was added to that chat)"
    )
    return json.dumps(answer).encode()


class BotRunner:
    """One Bot and the event loop it runs on; `call` runs a coroutine there and waits for it."""

    def __init__(self, token: str, api_url: str = DEFAULT_API_URL) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="telegram-loop", daemon=True)
        self._thread.start()
        self.bot = Bot(
            token,
            base_url=api_url,
            request=ChatNamingRequest(connection_pool_size=CONNECTIONS),
            get_updates_request=HTTPXRequest(connection_pool_size=2, read_timeout=40.0),
        )
        self._closed = False

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = CALL_TIMEOUT_SECONDS) -> T:
        """Run `coroutine` on the bot's loop and return its result; a 429 becomes RateLimited.

        Never call this from the loop's own thread: it would wait for itself.
        """
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(timeout)
        except RetryAfter as error:
            seconds = retry_after_seconds(error)
            logger.warning("telegram: rate limited, retry after %g s", seconds)
            raise RateLimited(seconds, "telegram") from error

    def close(self) -> None:
        """Close the bot's HTTP clients and stop the loop."""
        if self._closed:
            return
        self._closed = True
        try:
            self.call(self.bot.shutdown(), timeout=10.0)
        except Exception as error:  # closing is best effort
            logger.warning("telegram: closing the bot failed: %s", error)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10.0)


def retry_after_seconds(error: RetryAfter) -> float:
    """Return a RetryAfter's wait in seconds, whichever type this library version gives it as."""
    with warnings.catch_warnings():
        # Version 22 warns that the attribute becomes a timedelta; both are read here.
        warnings.simplefilter("ignore")
        value: object = error.retry_after
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)  # type: ignore[arg-type]
