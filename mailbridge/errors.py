"""Exceptions raised by mailbridge."""


class MailbridgeError(Exception):
    """Base class of the errors mailbridge raises on purpose."""


class MailSourceError(MailbridgeError):
    """A mail source lost or could not open its connection; retrying later may succeed."""
