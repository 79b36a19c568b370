"""Send composed emails over SMTP, classifying failures as temporary or permanent."""

import base64
import logging
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import SplitResult, unquote, urlsplit

from mailbridge.errors import MailbridgeError
from mailbridge.outgoing import OutgoingEmail

logger = logging.getLogger(__name__)

DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}
PASSWORD_VARIABLE = "THREADDESK_SMTP_PASSWORD"


class SmtpError(MailbridgeError):
    """Base class of the SMTP errors; the message never contains the password."""


class SmtpConfigError(SmtpError, ValueError):
    """An invalid SMTP URL or password setting; fix the settings and restart."""


class SmtpTemporaryError(SmtpError):
    """A failure that may pass: a 4xx reply, a lost connection, a timeout or a TLS problem.

    The message was not accepted, so sending it again later with the same
    Message-ID is safe.
    """


class SmtpPermanentError(SmtpError):
    """A 5xx reply to MAIL, RCPT or DATA: this message will not be accepted as it is."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class DeliveryReport:
    """The outcome of a send that was accepted for at least one recipient.

    `refused` maps each recipient the server refused to its reply code and text.
    Those recipients are not retried, because a new attempt would send the
    message a second time to everyone who accepted it. `location` is the file that
    `FileOutbox` wrote, and None after SMTP.
    """

    message_id: str
    refused: Mapping[str, tuple[int, str]] = field(default_factory=dict)
    location: str | None = None


class MailSender(Protocol):
    """Anything that can deliver an `OutgoingEmail`: `SmtpSender` or `FileOutbox`."""

    def send(self, email: OutgoingEmail) -> DeliveryReport: ...


@dataclass(frozen=True)
class SmtpSettings:
    """The parts of an SMTP URL; `security` is "plain", "starttls" or "tls"."""

    security: str
    host: str
    port: int
    user: str | None


def parse_smtp_url(url: str) -> SmtpSettings:
    """Parse `smtp://`, `smtp+starttls://` or `smtps://[user@]host[:port]` strictly.

    The user may be percent-encoded (`support%40example.com`). A password in the
    URL is rejected: it belongs in THREADDESK_SMTP_PASSWORD, and URLs end up in
    logs and error messages.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as error:
        raise SmtpConfigError(f"invalid SMTP URL {_redact_url(url)}: {error}") from None
    _check_url_parts(parts, url)
    assert parts.hostname is not None  # checked in _check_url_parts
    security = {"smtp": "plain", "smtp+starttls": "starttls", "smtps": "tls"}[parts.scheme]
    user = unquote(parts.username) if parts.username else None
    return SmtpSettings(security, parts.hostname, port or DEFAULT_PORTS[parts.scheme], user)


def _check_url_parts(parts: SplitResult, url: str) -> None:
    redacted = _redact_url(url)
    if parts.scheme not in DEFAULT_PORTS:
        raise SmtpConfigError(
            f"invalid SMTP URL {redacted}: the scheme must be smtp://, smtp+starttls:// or smtps://"
        )
    if parts.password is not None:
        raise SmtpConfigError(
            f"invalid SMTP URL {redacted}: remove the password from the URL "
            f"and set {PASSWORD_VARIABLE} instead"
        )
    if not parts.hostname:
        raise SmtpConfigError(f"invalid SMTP URL {redacted}: the server host name is missing")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise SmtpConfigError(
            f"invalid SMTP URL {redacted}: expected scheme://[user@]host[:port] with no path, "
            "query or fragment"
        )


def _redact_url(url: str) -> str:
    """Return the URL with anything between "://" and the last "@" of its authority hidden."""
    scheme, separator, rest = url.strip().partition("://")
    if not separator:
        return repr("<not a URL>")
    authority, slash, tail = rest.partition("/")
    if "@" in authority:
        authority = "***@" + authority.rpartition("@")[2]
    return repr(f"{scheme}://{authority}{slash}{tail}")


class SmtpSender:
    """Deliver emails through one SMTP server, opening a connection for each message.

    Certificates are verified against the system store plus `ca_file`. The EHLO
    name is the envelope sender's domain unless `helo_name` is given, so that the
    local host name is neither looked up nor sent.
    """

    def __init__(
        self,
        url: str,
        password: str | None,
        *,
        ca_file: str | Path | None = None,
        timeout: float = 30,
        helo_name: str | None = None,
    ) -> None:
        self.settings = parse_smtp_url(url)
        if self.settings.user and not password:
            raise SmtpConfigError(
                f"the SMTP URL names the user {self.settings.user!r}, but "
                f"{PASSWORD_VARIABLE} is not set"
            )
        if password and not self.settings.user:
            raise SmtpConfigError(
                f"{PASSWORD_VARIABLE} is set, but the SMTP URL names no user; "
                "write the user before the host, e.g. smtps://support%40example.com@host"
            )
        if self.settings.user and self.settings.security == "plain":
            logger.warning(
                "the SMTP password for %s is sent without TLS; "
                "use smtp+starttls:// or smtps:// unless the server is local",
                self.settings.user,
            )
        self._password = password
        self._timeout = timeout
        self._helo_name = helo_name
        self._tls_context = _tls_context(ca_file)

    def send(self, email: OutgoingEmail) -> DeliveryReport:
        """Deliver `email`; raise SmtpTemporaryError or SmtpPermanentError if it was not accepted.

        When the server accepts some recipients and refuses others, the message
        is sent and the refused ones are listed in the returned report.
        """
        where = f"{self.settings.host}:{self.settings.port}"
        logger.info(
            "ticket %s: sending %s to %d recipient(s) via %s",
            email.ticket_number,
            email.message_id,
            len(email.recipients),
            where,
        )
        try:
            refused = self._transmit(email)
        except SmtpError as error:
            logger.warning(
                "ticket %s: sending %s via %s failed: %s",
                email.ticket_number,
                email.message_id,
                where,
                error,
            )
            raise
        report = DeliveryReport(email.message_id, _decoded_refusals(refused))
        _log_delivery(email, report, where)
        return report

    def _transmit(self, email: OutgoingEmail) -> dict[str, tuple[int, bytes]]:
        client = self._connect(email)
        try:
            self._secure_and_login(client)
            return client.sendmail(email.sender, list(email.recipients), email.as_bytes())
        except (smtplib.SMTPException, OSError) as error:
            raise self._classified(error) from None
        finally:
            _close_quietly(client)

    def _connect(self, email: OutgoingEmail) -> smtplib.SMTP:
        helo_name = self._helo_name or email.sender.rpartition("@")[2]
        host, port = self.settings.host, self.settings.port
        try:
            if self.settings.security == "tls":
                return smtplib.SMTP_SSL(
                    host,
                    port,
                    local_hostname=helo_name,
                    timeout=self._timeout,
                    context=self._tls_context,
                )
            return smtplib.SMTP(host, port, local_hostname=helo_name, timeout=self._timeout)
        except (smtplib.SMTPException, OSError) as error:
            raise self._classified(error) from None

    def _secure_and_login(self, client: smtplib.SMTP) -> None:
        client.ehlo()
        if self.settings.security == "starttls":
            if not client.has_extn("starttls"):
                raise SmtpTemporaryError(
                    f"the SMTP server {self.settings.host}:{self.settings.port} does not offer "
                    "STARTTLS, which smtp+starttls:// requires; nothing was sent. Check the "
                    "server, or use smtps:// if it expects TLS from the start"
                )
            client.starttls(context=self._tls_context)
            client.ehlo()
        if self.settings.user and self._password:
            client.login(self.settings.user, self._password)

    def _classified(self, error: BaseException) -> SmtpError:
        """Turn an smtplib or socket error into our error, with the password removed."""
        if isinstance(error, SmtpError):
            return error
        where = f"{self.settings.host}:{self.settings.port}"
        text = self._scrubbed(_describe(error))
        if isinstance(error, ssl.SSLCertVerificationError):
            return SmtpTemporaryError(
                f"TLS certificate of the SMTP server {where} is not trusted ({text}); "
                "set THREADDESK_CA_FILE if it is signed by a private authority"
            )
        if isinstance(error, smtplib.SMTPAuthenticationError):
            # A rejected login is a settings problem, not a fault of this message, so
            # the message stays queued until the password is fixed.
            return SmtpTemporaryError(
                f"SMTP login as {self.settings.user!r} at {where} failed: {text}"
            )
        code = _reply_code(error)
        if isinstance(error, _MESSAGE_REJECTIONS) and code is not None and 500 <= code < 600:
            return SmtpPermanentError(f"the SMTP server {where} rejected the message: {text}", code)
        if isinstance(error, TimeoutError):
            return SmtpTemporaryError(f"the SMTP server {where} timed out after {self._timeout} s")
        return SmtpTemporaryError(f"sending via the SMTP server {where} failed: {text}")

    def _scrubbed(self, text: str) -> str:
        if not self._password:
            return text
        user = self.settings.user or ""
        secrets = {
            self._password,
            _b64(self._password),
            _b64(f"\0{user}\0{self._password}"),
            _b64(f"{user}\0{self._password}"),
        }
        for secret in secrets:
            text = text.replace(secret, "***")
        return text


# Refusals of the message itself (RFC 5321 section 4.2.1: 5yz is permanent). A 5xx
# reply to EHLO, STARTTLS or AUTH points at the settings or the server instead, so
# those stay temporary.
_MESSAGE_REJECTIONS = (
    smtplib.SMTPSenderRefused,
    smtplib.SMTPRecipientsRefused,
    smtplib.SMTPDataError,
)


def _reply_code(error: BaseException) -> int | None:
    if isinstance(error, smtplib.SMTPResponseException):
        return error.smtp_code
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in error.recipients.values()]
        # One 4xx refusal means a later attempt may still reach that recipient.
        temporary = [code for code in codes if code < 500]
        if temporary:
            return temporary[0]
        if codes:
            return codes[0]
    return None


def _describe(error: BaseException) -> str:
    if isinstance(error, smtplib.SMTPResponseException):
        return f"{error.smtp_code} {_reply_text(error.smtp_error)}"
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        refusals = [
            f"{address}: {code} {_reply_text(reply)}"
            for address, (code, reply) in error.recipients.items()
        ]
        return "every recipient was refused (" + "; ".join(refusals) + ")"
    return f"{type(error).__name__}: {error}"


def _reply_text(reply: bytes | str) -> str:
    if isinstance(reply, bytes):
        return reply.decode("utf-8", errors="replace")
    return reply


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _decoded_refusals(refused: dict[str, tuple[int, bytes]]) -> dict[str, tuple[int, str]]:
    return {address: (code, _reply_text(reply)) for address, (code, reply) in refused.items()}


def _log_delivery(email: OutgoingEmail, report: DeliveryReport, where: str) -> None:
    for address, (code, reply) in report.refused.items():
        logger.warning(
            "ticket %s: %s not delivered to %s, rejected by %s: %s %s",
            email.ticket_number,
            email.message_id,
            address,
            where,
            code,
            reply,
        )
    logger.info(
        "ticket %s: %s accepted by %s for %d of %d recipient(s)",
        email.ticket_number,
        email.message_id,
        where,
        len(email.recipients) - len(report.refused),
        len(email.recipients),
    )


def _close_quietly(client: smtplib.SMTP) -> None:
    # Once DATA is accepted, the server is responsible for the message. A failing
    # QUIT must not raise, because the caller would then send the message again.
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        client.close()


def _tls_context(ca_file: str | Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as error:
            raise SmtpConfigError(f"cannot read the CA file {str(ca_file)!r}: {error}") from None
    return context
