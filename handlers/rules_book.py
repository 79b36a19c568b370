"""The rules in force: one object that every part of a running desk reads the rules through.

Reloading replaces the whole `Rules` value at once, so a message is routed
by one version of the file from start to end, never by half of each.
"""

import threading
from collections.abc import Callable

from handlers.config import Rules


class RulesBook:
    """Holds the current rules; `replace` swaps them and tells the listeners."""

    def __init__(self, rules: Rules) -> None:
        self._rules = rules
        self._lock = threading.Lock()
        self._listeners: list[Callable[[Rules], None]] = []

    @property
    def current(self) -> Rules:
        return self._rules

    def on_replace(self, listener: Callable[[Rules], None]) -> None:
        """Call `listener` with the new rules after each replacement."""
        with self._lock:
            self._listeners.append(listener)

    def replace(self, rules: Rules) -> None:
        with self._lock:
            self._rules = rules
            listeners = list(self._listeners)
        for listener in listeners:
            listener(rules)
