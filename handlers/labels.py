"""Display names of statuses, priorities and message kinds, marked for translation."""

from collections.abc import Mapping

from handlers.i18n import N_

STATUS_LABELS: Mapping[str, str] = {
    "new": N_("new"),
    "open": N_("open"),
    "on_hold": N_("on hold"),
    "solved": N_("solved"),
    "closed": N_("closed"),
    "spam": N_("spam"),
}

PRIORITY_LABELS: Mapping[str, str] = {
    "low": N_("low"),
    "normal": N_("normal"),
    "high": N_("high"),
    "urgent": N_("urgent"),
}

MESSAGE_KIND_LABELS: Mapping[str, str] = {
    "customer": N_("email"),
    "auto_reply": N_("automatic reply"),
    "bounce": N_("delivery failure"),
    "list": N_("mailing list message"),
    "agent_reply": N_("reply"),
    "auto_response": N_("auto-reply sent"),
    "note": N_("internal comment"),
}
