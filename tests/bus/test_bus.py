"""The bus: in-process delivery semantics, the byte codec, and NATS JetStream as a drop-in."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from openmdr.bus import TOPIC_EVENTS, Codec, InProcessBus
from openmdr.models import EVENT_SCHEMA, Event, events_to_table, make_event_id
from tests.conftest import require_service


def _events(n: int) -> pa.Table:
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    events = []
    for i in range(n):
        e = Event(
            time=t0 + timedelta(seconds=i),
            source_format="json",
            fields={"i": i, "msg": "x" * 200},
            tenant="acme",
            ingested_at=t0,
            host=f"ws-{i % 50}",
            src_ip="10.0.0.1",
            dst_port=443,
        )
        e.event_id = make_event_id("acme", "json", None, str(i).encode())
        events.append(e)
    return events_to_table(events)


def test_in_process_delivers_in_order_to_every_subscriber() -> None:
    bus = InProcessBus()
    seen_a: list[int] = []
    seen_b: list[int] = []
    bus.subscribe("t", seen_a.append)
    sub = bus.subscribe("t", seen_b.append)
    for i in range(5):
        bus.publish("t", i)
    sub.close()
    bus.publish("t", 5)
    assert seen_a == [0, 1, 2, 3, 4, 5]
    assert seen_b == [0, 1, 2, 3, 4]
    assert bus.published["t"] == 6


def test_in_process_handler_failure_is_reported_not_swallowed() -> None:
    bus = InProcessBus()
    seen: list[int] = []

    def broken(_: int) -> None:
        raise RuntimeError("handler bug")

    bus.subscribe("t", broken)
    bus.subscribe("t", seen.append)
    with pytest.raises(RuntimeError, match="handler bug"):
        bus.publish("t", 1)
    assert seen == [1]  # the other subscriber still got it
    assert bus.errors == 1


def test_codec_round_trips_tables_and_json() -> None:
    table = _events(100)
    decoded = Codec.decode(Codec.encode(table))
    assert decoded.schema == EVENT_SCHEMA and decoded.equals(table)
    assert Codec.decode(Codec.encode({"alert": "x", "n": [1, 2]})) == {"alert": "x", "n": [1, 2]}
    with pytest.raises(ValueError):
        Codec.decode(b"Zjunk")


def test_nats_jetstream_carries_event_batches_larger_than_one_message() -> None:
    require_service("NATS JetStream", "127.0.0.1", 4222)
    from openmdr.bus.nats import NatsBus

    prefix = f"openmdr-test-{uuid.uuid4().hex[:8]}"
    bus = NatsBus(stream=prefix.upper().replace("-", "_"), prefix=prefix)
    try:
        table = _events(20_000)  # several MB: more than one NATS message
        received: list[pa.Table] = []
        done = threading.Event()

        def collect(batch: pa.Table) -> None:
            received.append(batch)
            if sum(b.num_rows for b in received) >= table.num_rows:
                done.set()

        bus.subscribe(TOPIC_EVENTS, collect)
        bus.publish(TOPIC_EVENTS, table)
        assert done.wait(30), f"only {sum(b.num_rows for b in received)} rows arrived"
        assert len(received) > 1
        merged = pa.concat_tables(received)
        assert merged.equals(table)
    finally:
        bus._run(bus._js.delete_stream(bus.stream))
        bus.close()
