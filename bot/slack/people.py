"""Who a Slack user is to the desk, and which language to answer them in."""

import logging
import threading

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from handlers.config import Rules
from handlers.i18n import Translator
from handlers.people import Actor, Directory

logger = logging.getLogger(__name__)


class SlackPeople:
    """The people of rules.yaml by Slack user id, with each user's language looked up once."""

    def __init__(self, client: WebClient, directory: Directory, rules: Rules) -> None:
        self.client = client
        self.directory = directory
        self.rules = rules
        self._locales: dict[str, str | None] = {}
        self._lock = threading.Lock()

    def actor(self, user_id: str) -> Actor | None:
        return self.directory.find("slack", user_id)

    def name(self, user_id: str) -> str:
        """Return the person's name from rules.yaml, else the Slack user id."""
        actor = self.actor(user_id)
        return actor.name if actor is not None else user_id

    def translator(self, user_id: str) -> Translator:
        """Return a translator for the person: locale from rules.yaml, else Slack's, else ours."""
        actor = self.actor(user_id)
        locale = actor.locale if actor is not None and actor.locale else None
        return Translator(
            locale or self._slack_locale(user_id) or self.rules.locale, self.rules.timezone
        )

    def _slack_locale(self, user_id: str) -> str | None:
        with self._lock:
            if user_id in self._locales:
                return self._locales[user_id]
        try:
            response = self.client.users_info(user=user_id, include_locale=True)
            locale = str(response["user"].get("locale") or "") or None
        except SlackApiError as error:
            logger.warning("user %s: locale not known: %s", user_id, error.response.get("error"))
            locale = None
        with self._lock:
            self._locales[user_id] = locale
        return locale
