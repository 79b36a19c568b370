"""Who may do what: the people of rules.yaml, found by their messenger ids, and their roles.

Agents, managers and admins work tickets. Members of a department read,
comment and answer questions about a ticket, but never claim it or write to
the customer. Anyone not in rules.yaml is refused politely.
"""

from dataclasses import dataclass

from handlers.config import Person, Rules

STAFF_ROLES = frozenset({"agent", "manager", "admin"})
DEPARTMENT_ROLE = "department"


@dataclass(frozen=True)
class Actor:
    """A person acting through a messenger; `name` is the key stored as a ticket's owner."""

    name: str
    role: str
    locale: str | None = None
    department: str | None = None
    email: str | None = None

    @property
    def works_tickets(self) -> bool:
        """Return True when the actor may claim tickets and write to customers."""
        return self.role in STAFF_ROLES

    @property
    def is_manager(self) -> bool:
        return self.role in ("manager", "admin")


class Directory:
    """The people of one rules file, indexed by Slack and Telegram user id."""

    def __init__(self, rules: Rules) -> None:
        self._by_messenger_id: dict[tuple[str, str], Actor] = {}
        self._people: dict[str, Person] = {}
        self.reload(rules)

    def reload(self, rules: Rules) -> None:
        """Index the people of `rules`, replacing the old index at once when it is complete."""
        by_messenger_id: dict[tuple[str, str], Actor] = {}
        people: dict[str, Person] = {}

        def add(person: Person, actor: Actor) -> None:
            people[person.name] = person
            if person.slack:
                by_messenger_id[("slack", person.slack)] = actor
            if person.telegram is not None:
                by_messenger_id[("telegram", str(person.telegram))] = actor

        for person in rules.agents:
            add(person, Actor(person.name, person.role, person.locale, None, person.email))
        for department_name, department in rules.departments.items():
            for member in department.members:
                if member.name in people:
                    continue  # an agent who is also in a department keeps the agent's rights
                add(
                    member,
                    Actor(
                        member.name, DEPARTMENT_ROLE, member.locale, department_name, member.email
                    ),
                )
        self._by_messenger_id, self._people = by_messenger_id, people

    def find(self, messenger: str, user_id: str) -> Actor | None:
        """Return the person behind a messenger user id, or None for a stranger."""
        return self._by_messenger_id.get((messenger, str(user_id)))

    def person(self, name: str) -> Person | None:
        return self._people.get(name)

    def messenger_id(self, name: str, messenger: str) -> str | None:
        """Return the person's user id in `messenger`, for a direct message, or None."""
        person = self._people.get(name)
        if person is None:
            return None
        if messenger == "slack":
            return person.slack
        if messenger == "telegram" and person.telegram is not None:
            return str(person.telegram)
        return None
