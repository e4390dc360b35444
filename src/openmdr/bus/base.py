"""Bus protocol: topics, handlers and the codec a broker uses to carry messages as bytes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import pyarrow as pa

#: Normalized, enriched event batches (an Arrow table in :data:`openmdr.models.EVENT_SCHEMA`).
TOPIC_EVENTS = "events"
#: Alerts from any detection source.
TOPIC_ALERTS = "alerts"
#: Cases opened or changed by correlation (a JSON dict: tenant, case_id, change).
TOPIC_CASES = "cases"
#: Response actions decided or executed (a JSON dict: tenant, action_id, state).
TOPIC_ACTIONS = "actions"
#: Indicators added to the shared store (a JSON dict: indicator ids, scope).
TOPIC_INDICATORS = "indicators"

Handler = Callable[[Any], None]


class Subscription(Protocol):
    """Handle returned by :meth:`Bus.subscribe`; ``close`` stops delivery."""

    def close(self) -> None:
        """Stop delivering messages to the handler."""
        ...


class Bus(Protocol):
    """Publish/subscribe by topic; delivery order per topic is publish order."""

    def publish(self, topic: str, message: Any) -> None:
        """Deliver ``message`` to every subscriber of ``topic``."""
        ...

    def subscribe(self, topic: str, handler: Handler) -> Subscription:
        """Call ``handler(message)`` for every message published on ``topic``."""
        ...

    def close(self) -> None:
        """Release connections and stop delivery."""
        ...


class Codec:
    """Turns bus messages into bytes and back, for brokers that cross process boundaries.

    Arrow tables travel as Arrow IPC streams (zero-copy on read); anything else as JSON.
    """

    ARROW = b"A"
    JSON = b"J"

    @staticmethod
    def encode(message: Any) -> bytes:
        """Serialize ``message`` (an Arrow table or a JSON-compatible value)."""
        import orjson

        if isinstance(message, pa.Table):
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, message.schema) as writer:
                writer.write_table(message)
            return Codec.ARROW + sink.getvalue().to_pybytes()
        return Codec.JSON + orjson.dumps(message)

    @staticmethod
    def decode(data: bytes) -> Any:
        """Inverse of :meth:`encode`."""
        import orjson

        kind, body = data[:1], data[1:]
        if kind == Codec.ARROW:
            return pa.ipc.open_stream(pa.py_buffer(body)).read_all()
        if kind == Codec.JSON:
            return orjson.loads(body)
        raise ValueError(f"unknown bus message kind {kind!r}")
