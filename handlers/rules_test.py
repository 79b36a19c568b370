"""A dry run of the rules on one email, as `threaddesk rules test FILE.eml` prints it.

Nothing is stored or sent. The store is not read either, so the customer
counts as new, with no tags and no earlier auto-reply, unless the caller
passes the values that the store would return.
"""

from collections.abc import Iterable
from datetime import datetime
from email.message import EmailMessage

from handlers.business_hours import is_open
from handlers.config import Rules
from handlers.i18n import Translator
from handlers.rules_engine import (
    Action,
    Plan,
    PlannedAction,
    SkippedAction,
    evaluate,
    facts_from_message,
)
from handlers.template_values import customer_language, placeholder_values
from handlers.templates import render_template
from mailbridge.classify import classify
from mailbridge.message import ParsedMessage
from mailbridge.parse import parse_message

# The dry run only reads the text; attachments are listed, never kept.
MAX_ATTACHMENT_BYTES = 0


LAST_ONE_WINS = frozenset({"priority", "topic"})
FIRST_ONE_WINS = frozenset({"assign", "post_in"})
# A dry run opens no ticket, so its auto-reply preview shows this in place of the number.
DRY_RUN_TICKET_NUMBER = "N"


def explain_rules(
    rules: Rules,
    raw_email: bytes,
    now: datetime,
    *,
    is_follow_up: bool = False,
    known_customer: bool = False,
    customer_tags: Iterable[str] = (),
    last_auto_reply_at: datetime | None = None,
) -> str:
    """Return a report of which rules match the email received at `now`, and what they would do."""
    message = parse_message(raw_email, max_attachment_bytes=MAX_ATTACHMENT_BYTES)
    classification = classify(message.source or EmailMessage(), rules.own_addresses())
    facts = facts_from_message(
        message,
        classification,
        now,
        mailbox=rules.support_address,
        is_follow_up=is_follow_up,
        known_customer=known_customer,
        customer_tags=customer_tags,
        last_auto_reply_at=last_auto_reply_at,
    )
    plan = evaluate(rules, facts)
    translator = Translator(rules.locale, rules.timezone)
    _ = translator.gettext

    lines = [
        _("Subject: {subject}", subject=message.subject),
        _("From: {sender}", sender=message.sender.address or _("(no address)")),
        _received_line(rules, now, translator),
        _("Customer: known") if known_customer else _("Customer: new"),
    ]
    if classification.is_automatic:
        lines.append(_("Automatic mail: {reasons}", reasons=", ".join(classification.reasons)))
    lines.append("")
    lines.extend(_rule_lines(rules, plan, message, now, translator))
    lines.append("")
    lines.append(_("Dry run: nothing was changed and no mail was sent."))
    return "\n".join(lines) + "\n"


def _received_line(rules: Rules, now: datetime, translator: Translator) -> str:
    _ = translator.gettext
    moment = f"{translator.datetime(now)} ({rules.timezone})"
    if rules.business_hours is None:
        return _("Received: {moment} (no business hours are set)", moment=moment)
    if is_open(rules.business_hours, now):
        return _("Received: {moment}, inside business hours", moment=moment)
    return _("Received: {moment}, outside business hours", moment=moment)


def _rule_lines(
    rules: Rules, plan: Plan, message: ParsedMessage, now: datetime, translator: Translator
) -> list[str]:
    _ = translator.gettext
    if not plan.outcomes:
        return [_("The file has no rules.")]
    lines = []
    deciders = _deciding_actions(plan)
    for outcome in plan.outcomes:
        title = _rule_title(outcome.index, outcome.name, translator)
        if not outcome.evaluated:
            lines.append(_("{rule}: not evaluated, because an earlier rule stopped", rule=title))
            continue
        if not outcome.matched:
            lines.append(_("{rule}: does not match", rule=title))
            continue
        lines.append(_("{rule}: matches", rule=title))
        for planned in plan.actions:
            if planned.rule_index == outcome.index:
                lines.append("  " + describe_action(planned.action, translator))
                decider = deciders.get(planned.action.kind)
                if decider is not None and decider is not planned:
                    rule = _rule_title(decider.rule_index, decider.rule_name, translator)
                    lines.append("    " + _("not applied: {rule} decides this", rule=rule))
                if planned.action.auto_reply is not None:
                    lines.extend(
                        _auto_reply_preview(rules, planned.action, message, now, translator)
                    )
        for skipped in plan.skipped:
            if skipped.rule_index == outcome.index:
                lines.append("  " + describe_action(skipped.action, translator))
                lines.append("    " + describe_skip(skipped, translator))
    if not any(outcome.matched for outcome in plan.outcomes):
        lines.append(_("No rule matches this message."))
    return lines


def _deciding_actions(plan: Plan) -> dict[str, PlannedAction]:
    """Return, for each action kind that only one rule can set, the action that takes effect.

    The last matching rule sets the priority and the topic; the first one sets
    the owner and the channel. Tags, notices and the rest all apply.
    """
    deciders: dict[str, PlannedAction] = {}
    for planned in plan.actions:
        kind = planned.action.kind
        if kind in LAST_ONE_WINS or (kind in FIRST_ONE_WINS and kind not in deciders):
            deciders[kind] = planned
    return deciders


def _rule_title(index: int, name: str, translator: Translator) -> str:
    if name:
        return translator.gettext("Rule {number} ({name})", number=index + 1, name=name)
    return translator.gettext("Rule {number}", number=index + 1)


def _auto_reply_preview(
    rules: Rules, action: Action, message: ParsedMessage, now: datetime, translator: Translator
) -> list[str]:
    template = rules.templates.get(action.auto_reply or "")
    if template is None:
        return [
            "    " + translator.gettext("the template does not exist, so nothing would be sent")
        ]
    language = customer_language(message.text, rules.locale)
    values = placeholder_values(
        rules,
        language=language,
        now=now,
        customer_name=message.sender.name,
        customer_email=message.sender.address,
        ticket_number=DRY_RUN_TICKET_NUMBER,
        subject=message.subject,
    )
    rendered = render_template(template, language, values)
    heading = translator.gettext(
        "auto-reply in {language}, as the customer would read it:", language=rendered.language
    )
    body = [f"      {line}".rstrip() for line in rendered.body.rstrip().splitlines()]
    return ["    " + heading, *body]


def describe_action(action: Action, translator: Translator) -> str:
    """Describe one action in the reader's language, e.g. "set priority to high"."""
    _ = translator.gettext
    if action.priority is not None:
        return _("set priority to {priority}", priority=action.priority)
    if action.tags is not None:
        return _("add tags: {tags}", tags=", ".join(action.tags))
    if action.topic is not None:
        return _("set topic to {topic}", topic=action.topic)

    if action.assign is not None and action.assign.agent is not None:
        return _("assign to {agent}", agent=action.assign.agent)
    if action.assign is not None:
        if action.assign.strategy == "fewest_open":
            return _(
                "assign to the member of {department} with the fewest open tickets",
                department=action.assign.department,
            )
        return _(
            "assign to the next member of {department} in turn",
            department=action.assign.department,
        )

    if action.post_in is not None:
        return _("post the ticket in channel {channel}", channel=action.post_in)
    if action.auto_reply is not None:
        return _("send the auto-reply {template}", template=action.auto_reply)
    if action.spam:
        return _("mark as spam")

    if action.notify is not None and action.notify.channel is not None:
        return _("notify channel {channel}", channel=action.notify.channel)
    if action.notify is not None:
        return _("notify {person}", person=action.notify.person)
    return _("stop: later rules are not evaluated")


def describe_skip(skipped: SkippedAction, translator: Translator) -> str:
    """Explain in the reader's language why a planned auto-reply is not sent."""
    _ = translator.gettext
    if skipped.reason == "automatic":
        return _("not sent: the message is automatic ({reasons})", reasons=skipped.detail)
    if skipped.reason == "no-reply-sender" and not skipped.detail:
        return _("not sent: the message has no sender address")
    if skipped.reason == "no-reply-sender":
        return _("not sent: the sender {sender} accepts no replies", sender=skipped.detail)
    if skipped.reason == "spam":
        return _("not sent: the message is marked as spam")
    if skipped.reason == "already-planned":
        return _("not sent: an earlier rule already sends an auto-reply")
    return _(
        "not sent: this sender already got an auto-reply at {moment}",
        moment=translator.datetime(datetime.fromisoformat(skipped.detail)),
    )
