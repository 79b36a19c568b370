"""The Slack setup guides name exactly the scopes, events and command of the app manifest."""

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
MANIFEST = REPO_ROOT / "bot" / "slack" / "manifest.yaml"
GUIDES = [REPO_ROOT / "docs" / "slack-setup.md", REPO_ROOT / "docs" / "slack-setup.ru.md"]
# The app-level token's scope for Socket Mode, which the guides name but the manifest does not.
APP_TOKEN_SCOPES = {"connections:write"}
SCOPE = re.compile(r"`([a-z]+(?::[a-z.]+)+)`")
EVENT = re.compile(r"`(message\.[a-z_]+)`")


def manifest() -> dict[str, Any]:
    loaded = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def bot_scopes() -> set[str]:
    return set(manifest()["oauth_config"]["scopes"]["bot"])


def bot_events() -> set[str]:
    return set(manifest()["settings"]["event_subscriptions"]["bot_events"])


def commands() -> set[str]:
    return {command["command"] for command in manifest()["features"]["slash_commands"]}


def test_manifest_lists_used_parts() -> None:
    assert bot_scopes() == {
        "chat:write",
        "commands",
        "channels:history",
        "groups:history",
        "im:write",
        "im:history",
        "users:read",
        "files:write",
    }
    assert bot_events() == {"message.channels", "message.groups", "message.im"}
    assert commands() == {"/desk"}


@pytest.mark.parametrize("guide", GUIDES, ids=lambda path: path.name)
def test_guide_names_manifest_scopes(guide: Path) -> None:
    text = guide.read_text(encoding="utf-8")
    named = set(SCOPE.findall(text)) - APP_TOKEN_SCOPES
    colon_scopes = {scope for scope in bot_scopes() if ":" in scope}

    assert named == colon_scopes
    assert all(f"`{scope}`" in text for scope in bot_scopes())


@pytest.mark.parametrize("guide", GUIDES, ids=lambda path: path.name)
def test_guide_names_manifest_events(guide: Path) -> None:
    text = guide.read_text(encoding="utf-8")
    named = set(EVENT.findall(text))

    assert named == bot_events()


@pytest.mark.parametrize("guide", GUIDES, ids=lambda path: path.name)
def test_guide_names_manifest_command(guide: Path) -> None:
    text = guide.read_text(encoding="utf-8")

    assert all(f"`{command}`" in text for command in commands())
