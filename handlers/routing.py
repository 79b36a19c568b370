"""Apply the rules of rules.yaml to an email during intake, in intake's transaction.

Intake requests a routing decision before it writes the ticket, so that a new
ticket is inserted with its priority, topic, owner and channel already set.
After the message is stored, the rest of the plan follows: tags,
notifications, the auto-reply, and one `rules_applied` event that names the
matching rules, so an agent can see why a ticket looks as it does.

Rules run on every new ticket and on every customer follow-up; a bounce or
an auto-reply that joins a known ticket is not a follow-up. A follow-up
never moves a ticket to another owner or channel, and never marks it as
spam: it keeps what the agents have done with it.
"""

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from handlers.auto_replies import AutoReplyRequest, queue_auto_reply
from handlers.config import Rules
from handlers.i18n import N_
from handlers.notifications import enqueue_channel_notice, enqueue_person_notice
from handlers.replies import ReplySettings
from handlers.rules_engine import (
    Assignment,
    MessageFacts,
    Plan,
    choose_member,
    evaluate,
    facts_from_message,
    guard_auto_replies,
)
from handlers.sla import refresh_due_times
from mailbridge.classify import Classification
from mailbridge.message import ParsedMessage
from store.models import Ticket, TicketStatus
from store.routing import (
    add_ticket_tags,
    customer_facts,
    last_auto_reply_at,
    open_ticket_counts,
    take_round_robin_turn,
)
from store.tickets import record_event

logger = logging.getLogger(__name__)

RULES_ACTOR = "system:rules"
NOTICE = N_("Ticket #{number} matched the rule {rule}: {subject}")
# Statuses in which a follow-up may still give the ticket an owner.
UNOWNED_STATUSES = (TicketStatus.NEW,)


@dataclass(frozen=True)
class Routing:
    """The rules' decision on one email, and the owner it names, once chosen."""

    plan: Plan
    facts: MessageFacts
    is_follow_up: bool
    assignee: str | None = None
    # Whether applying the plan changed what the ticket's card shows.
    changed_card: bool = False

    @property
    def matched(self) -> bool:
        """Return whether any rule matched, so that there is something to apply."""
        return any(outcome.matched for outcome in self.plan.outcomes)

    @property
    def matched_rules(self) -> list[str]:
        """The names of the matching rules ("#N" for a rule without a name), in file order."""
        return [
            _rule_label(outcome.index, outcome.name)
            for outcome in self.plan.outcomes
            if outcome.matched
        ]


def route_email(
    session: Session,
    rules: Rules,
    parsed: ParsedMessage,
    classification: Classification,
    received_at: datetime,
    *,
    mailbox: str,
    follow_up_of: int | None,
) -> Routing | None:
    """Evaluate `rules` on an email; None when the file has no rules.

    `follow_up_of` is the id of the ticket a customer follow-up belongs to,
    None for an email that opens a ticket.
    """
    if not rules.rules:
        return None

    sender = parsed.sender.address
    customer = customer_facts(session, sender, excluding_ticket=follow_up_of)
    facts = facts_from_message(
        parsed,
        classification,
        received_at,
        mailbox=mailbox,
        is_follow_up=follow_up_of is not None,
        known_customer=customer.known,
        customer_tags=customer.tags,
    )
    plan = evaluate(rules, facts)

    # Only a planned auto-reply needs the sender's history, so only then is it read.
    if plan.auto_reply is not None and sender:
        last = last_auto_reply_at(session, sender)
        if last is not None:
            facts = replace(facts, last_auto_reply_at=last)
            guard_auto_replies(plan, facts, rules.auto_reply_interval)
    return Routing(plan, facts, is_follow_up=follow_up_of is not None)


def new_ticket_fields(
    session: Session, rules: Rules, routing: Routing, now: datetime
) -> tuple[Routing, dict[str, Any]]:
    """Return the ticket columns that the plan sets, and the routing with its chosen owner."""
    plan = routing.plan
    fields: dict[str, Any] = {}
    if plan.priority is not None:
        fields["priority"] = plan.priority
    if plan.topic is not None:
        fields["topic"] = plan.topic
    if plan.channel is not None and plan.channel in rules.channels:
        fields["channel"] = plan.channel
    if plan.is_spam:
        fields["status"] = TicketStatus.SPAM
        return routing, fields

    assignee = _choose_assignee(session, rules, plan.assignment)
    if assignee is not None:
        fields.update(assignee=assignee, assigned_at=now, status=TicketStatus.OPEN)
    return replace(routing, assignee=assignee), fields


def apply_to_follow_up(
    session: Session, rules: Rules, routing: Routing, ticket: Ticket, now: datetime
) -> Routing:
    """Set what the plan changes on a known ticket: priority, topic, and an owner if it has none."""
    plan = routing.plan
    before = (ticket.priority, ticket.topic)
    if plan.priority is not None:
        ticket.priority = plan.priority
    if plan.topic is not None:
        ticket.topic = plan.topic
    changed = (ticket.priority, ticket.topic) != before
    if ticket.priority != before[0]:
        refresh_due_times(ticket, rules)
    if ticket.assignee is not None or ticket.status not in UNOWNED_STATUSES:
        return replace(routing, changed_card=changed)

    assignee = _choose_assignee(session, rules, plan.assignment)
    if assignee is not None:
        ticket.assignee, ticket.assigned_at, ticket.status = assignee, now, TicketStatus.OPEN
    return replace(routing, assignee=assignee, changed_card=changed or assignee is not None)


def finish_routing(
    session: Session,
    rules: Rules,
    routing: Routing,
    ticket: Ticket,
    *,
    reply_settings: ReplySettings | None,
    notify: bool,
    customer_text: str,
) -> list[str]:
    """After the email is stored: tag the ticket, notify, auto-reply, and log what the rules did.

    Returns the tags added. `notify` is false for a silent import, which
    posts nothing and sends no mail.
    """
    plan = routing.plan
    matched = routing.matched_rules
    if not matched:
        return []

    added_tags = add_ticket_tags(session, ticket.id, plan.tags)
    record_event(
        session,
        ticket,
        RULES_ACTOR,
        "rules_applied",
        rules=matched,
        actions=[planned.action.kind for planned in plan.actions],
        tags=added_tags,
        assignee=routing.assignee,
        skipped=[f"{skipped.action.kind}: {skipped.reason}" for skipped in plan.skipped],
    )
    logger.info(
        "ticket #%d: rules %s applied (%s)",
        ticket.number,
        ", ".join(matched),
        ", ".join(planned.action.kind for planned in plan.actions) or "no actions",
    )
    if not notify:
        return added_tags

    _send_notifications(session, rules, plan, ticket)
    auto_reply = next((planned for planned in plan.actions if planned.action.auto_reply), None)
    if auto_reply is not None and reply_settings is not None and routing.facts.sender:
        request = AutoReplyRequest(
            template=str(auto_reply.action.auto_reply),
            rule_name=_rule_label(auto_reply.rule_index, auto_reply.rule_name),
            recipient=routing.facts.sender,
            customer_text=customer_text,
            received_at=routing.facts.received_at,
        )
        queue_auto_reply(session, ticket, request, rules, reply_settings)
    return added_tags


def _send_notifications(session: Session, rules: Rules, plan: Plan, ticket: Ticket) -> None:
    for planned in plan.actions:
        target = planned.action.notify
        if target is None:
            continue
        params: dict[str, str | int] = {
            "number": ticket.number,
            "rule": _rule_label(planned.rule_index, planned.rule_name),
            "subject": ticket.subject[:200],
        }
        if target.person is not None:
            enqueue_person_notice(session, ticket, target.person, NOTICE, params)
        elif target.channel is not None and target.channel in rules.channels:
            enqueue_channel_notice(session, ticket, target.channel, NOTICE, params)


def _choose_assignee(session: Session, rules: Rules, assignment: Assignment | None) -> str | None:
    """Return the owner that `assignment` names: the agent, or a department member who is an agent.

    Only people listed under `agents` work tickets, so a department member
    who is not also an agent is passed over.
    """
    if assignment is None:
        return None
    agents = {agent.name for agent in rules.agents}
    if assignment.agent is not None:
        if assignment.agent in agents:
            return assignment.agent
        logger.warning(
            "rules assign to %s, who is not in agents; left unassigned", assignment.agent
        )
        return None

    department = rules.departments.get(assignment.department or "")
    members = (
        [member for member in department.members if member.name in agents] if department else []
    )
    if not members:
        logger.warning(
            "rules assign to department %s, which has no member listed in agents; left unassigned",
            assignment.department,
        )
        return None
    if assignment.strategy == "fewest_open":
        counts = open_ticket_counts(session, [member.name for member in members])
        chosen = choose_member(members, "fewest_open", open_tickets=counts)
    else:
        turn = take_round_robin_turn(session, str(assignment.department)) - 1
        chosen = choose_member(members, "round_robin", turn=turn)
    return chosen.name if chosen is not None else None


def _rule_label(index: int, name: str) -> str:
    """Return a rule's name, or "#N" (its position, from 1) for a rule without one."""
    return name or f"#{index + 1}"
