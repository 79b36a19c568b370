"""Settings from the environment (or a .env file): secrets, addresses and limits."""

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIB = 1024 * 1024


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="THREADDESK_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = "sqlite:///threaddesk.db"
    rules: Path = Path("rules.yaml")
    data_dir: Path = Field(
        default=Path("threaddesk-data"),
        description="folder of stored raw messages and attachments",
    )
    imap_url: str | None = None
    imap_password: SecretStr | None = None
    maildir: Path | None = None
    smtp_url: str | None = None
    outbox_dir: Path = Field(
        default=Path("outbox"),
        description="folder that replies are written to as .eml files when no SMTP is set",
    )
    smtp_password: SecretStr | None = None
    from_address: str | None = Field(
        default=None, validation_alias=AliasChoices("THREADDESK_FROM", "from_address")
    )
    http_port: int = 3000
    http_host: str = Field(default="0.0.0.0", description="address the HTTP endpoint listens on")
    ca_file: Path | None = None
    max_message_bytes: int = Field(default=50 * MIB, gt=0)
    max_attachment_bytes: int = Field(default=25 * MIB, gt=0)
    poll_interval: float | None = Field(
        default=None,
        gt=0,
        description="seconds between checks of a mailbox without IMAP IDLE; "
        "by default 60 for IMAP and 5 for a Maildir",
    )
    test_database_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

    slack_bot_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_BOT_TOKEN")
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_SIGNING_SECRET")
    )
    slack_app_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_APP_TOKEN")
    )
    slack_api_url: str = Field(
        default="https://slack.com/api/", validation_alias=AliasChoices("SLACK_API_URL")
    )
    telegram_bot_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("TELEGRAM_BOT_TOKEN")
    )
    telegram_api_url: str = Field(
        default="https://api.telegram.org/bot", validation_alias=AliasChoices("TELEGRAM_API_URL")
    )
    telegram_webhook_url: str | None = Field(
        default=None, validation_alias=AliasChoices("TELEGRAM_WEBHOOK_URL")
    )
    telegram_webhook_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("TELEGRAM_WEBHOOK_SECRET")
    )
    telegram_webhook_port: int = Field(
        default=8443, validation_alias=AliasChoices("TELEGRAM_WEBHOOK_PORT")
    )
    # A self-hosted Bot API server started with --local accepts files of up to 2000 MB.
    telegram_local_api: bool = Field(
        default=False, validation_alias=AliasChoices("TELEGRAM_LOCAL_API")
    )

    @field_validator("maildir", "imap_url", "smtp_url", "ca_file", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """Read an empty variable (THREADDESK_MAILDIR=) as not set, not as the current folder."""
        return None if value == "" else value

    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
