"""Fixtures of the Slack tests: the fake Slack and threaddesk's Slack side against it.

tests/conftest.py loads this module for every test through `pytest_plugins`.
`slack` is built from the requesting test module's RULES (the `rules`
fixture, which a test may parametrize), sends customer email through
`mail_sender` and starts with the outbox delivered. A module changes what it
starts from by overriding a fixture: `intake` to take mail before the desk
starts, so its cards are posted, `mail_sender` to send email through an SMTP
server, `fake` to serve Socket Mode.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from handlers.config import Rules
from mailbridge.smtp import MailSender
from tests.fake_slack import FakeSlack, SlackTestDesk
from tests.intake_support import Intake


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    """The fake Slack Web API on 127.0.0.1, stopped after the test."""
    with FakeSlack() as server:
        yield server


@pytest.fixture
def rules(request: pytest.FixtureRequest) -> Rules:
    """The requesting test module's RULES, which the `slack` desk is built from."""
    module = request.module
    found = getattr(module, "RULES", None)
    if found is None:
        pytest.fail(
            f"{module.__name__} has no RULES: the `rules` and `slack` fixtures read the rules "
            "from the test module, so define RULES = Rules.model_validate({...}) there",
            pytrace=False,
        )
    if not isinstance(found, Rules):
        pytest.fail(
            f"{module.__name__}.RULES is a {type(found).__name__}, not a handlers.config.Rules",
            pytrace=False,
        )
    return found


@pytest.fixture
def mail_sender() -> MailSender | None:
    """How the `slack` desk sends email: it sends none unless a module overrides this."""
    return None


@pytest.fixture
def slack(
    fake: FakeSlack,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    rules: Rules,
    mail_sender: MailSender | None,
    intake: Intake,
) -> Iterator[SlackTestDesk]:
    """threaddesk's Slack side, with every ticket that `intake` took already posted.

    The desk shares the `intake` fixture's data folder, and is closed after the test.
    """
    with SlackTestDesk(fake, session_factory, tmp_path / "data", rules, mail_sender) as desk:
        desk.deliver()
        yield desk
