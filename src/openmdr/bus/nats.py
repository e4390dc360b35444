"""NATS JetStream implementation of the :class:`~openmdr.bus.Bus` protocol (scale-out shape).

Topics map to subjects ``<prefix>.<topic>`` in one JetStream stream, so published
batches survive a consumer restart and several worker processes can share a durable
consumer (queue semantics) to split the work.  Arrow tables larger than the server's
message limit are split into row slices, each a self-contained table: subscribers
simply see more, smaller batches.  The asyncio client runs on a private event-loop
thread, so callers keep the same synchronous API as :class:`InProcessBus`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import pyarrow as pa

from openmdr.bus.base import Codec, Handler

T = TypeVar("T")


class _NatsSubscription:
    def __init__(self, bus: NatsBus, sub: Any) -> None:
        self._bus, self._sub = bus, sub

    def close(self) -> None:
        self._bus._run(self._sub.unsubscribe())


class NatsBus:
    """Publishes to and consumes from NATS JetStream with at-least-once delivery."""

    def __init__(
        self,
        url: str = "nats://127.0.0.1:4222",
        stream: str = "OPENMDR",
        prefix: str = "openmdr",
        timeout: float = 10.0,
    ) -> None:
        self.url, self.stream, self.prefix, self.timeout = url, stream, prefix, timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="openmdr-nats", daemon=True)
        self._thread.start()
        self.handler_errors = 0
        try:
            self._run(self._connect())
        except BaseException:
            self._stop_loop()
            raise

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(self.timeout)

    async def _connect(self) -> None:
        import nats
        from nats.js.api import StreamConfig

        self._nc = await nats.connect(self.url, connect_timeout=self.timeout, max_reconnect_attempts=3)
        self._js = self._nc.jetstream(timeout=self.timeout)
        self.max_payload = int(self._nc.max_payload)
        config = StreamConfig(name=self.stream, subjects=[f"{self.prefix}.>"])
        try:
            await self._js.add_stream(config)
        except Exception:  # exists with another config: keep it, it covers our subjects
            await self._js.stream_info(self.stream)

    def subject(self, topic: str) -> str:
        """The NATS subject a topic is carried on."""
        return f"{self.prefix}.{topic}"

    def _chunks(self, message: Any) -> list[bytes]:
        """Encode ``message``, splitting tables so every chunk fits the server's payload limit."""
        limit = self.max_payload - 1024
        data = Codec.encode(message)
        if len(data) <= limit or not isinstance(message, pa.Table) or message.num_rows <= 1:
            if len(data) > limit:
                raise ValueError(f"message of {len(data)} bytes exceeds the NATS payload limit {limit}")
            return [data]
        half = message.num_rows // 2
        return self._chunks(message.slice(0, half)) + self._chunks(message.slice(half))

    def publish(self, topic: str, message: Any) -> None:
        """Publish ``message`` and wait for JetStream to acknowledge every chunk."""
        chunks = self._chunks(message)

        async def send() -> None:
            for chunk in chunks:
                await self._js.publish(self.subject(topic), chunk)

        self._run(send())

    def subscribe(self, topic: str, handler: Handler, durable: str | None = None) -> _NatsSubscription:
        """Deliver new messages on ``topic`` to ``handler``; a ``durable`` name shares work across workers.

        A message is acknowledged after the handler returns; if the handler raises, the
        message is not acknowledged and JetStream redelivers it.
        """

        async def on_message(msg: Any) -> None:
            try:
                handler(Codec.decode(msg.data))
            except Exception:
                self.handler_errors += 1
                await msg.nak()
                return
            await msg.ack()

        async def sub() -> Any:
            from nats.js.api import DeliverPolicy

            if durable:
                return await self._js.subscribe(
                    self.subject(topic), queue=durable, durable=durable, cb=on_message, manual_ack=True
                )
            return await self._js.subscribe(
                self.subject(topic), cb=on_message, manual_ack=True, deliver_policy=DeliverPolicy.NEW
            )

        return _NatsSubscription(self, self._run(sub()))

    def close(self) -> None:
        """Drain the connection and stop the loop thread."""
        try:
            self._run(self._nc.drain())
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=self.timeout)
