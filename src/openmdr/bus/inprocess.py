"""Synchronous in-process bus: the embedded default."""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

from openmdr.bus.base import Handler


class _InProcessSubscription:
    def __init__(self, bus: InProcessBus, topic: str, handler: Handler) -> None:
        self._bus, self._topic, self._handler = bus, topic, handler

    def close(self) -> None:
        self._bus._remove(self._topic, self._handler)


class InProcessBus:
    """Delivers each published message to the topic's handlers in the publishing thread.

    A handler that raises does not stop delivery to the others; the error is counted in
    :attr:`errors` and re-raised after every handler ran, so failures are never silent.
    """

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
        self._lock = threading.Lock()
        self.published: dict[str, int] = defaultdict(int)
        self.errors = 0

    def publish(self, topic: str, message: Any) -> None:
        """Deliver ``message`` to every current subscriber of ``topic``."""
        with self._lock:
            handlers = list(self._handlers.get(topic, ()))
            self.published[topic] += 1
        first_error: BaseException | None = None
        for handler in handlers:
            try:
                handler(message)
            except Exception as exc:  # deliver to the rest, then report
                self.errors += 1
                first_error = first_error or exc
        if first_error is not None:
            raise first_error

    def subscribe(self, topic: str, handler: Handler) -> _InProcessSubscription:
        """Register ``handler`` for ``topic``."""
        with self._lock:
            self._handlers[topic].append(handler)
        return _InProcessSubscription(self, topic, handler)

    def _remove(self, topic: str, handler: Handler) -> None:
        with self._lock:
            if handler in self._handlers.get(topic, []):
                self._handlers[topic].remove(handler)

    def close(self) -> None:
        """Drop every subscription."""
        with self._lock:
            self._handlers.clear()
