"""Signed webhooks: a real receiver verifies the HMAC signature; tampering and stale timestamps are refused."""

from __future__ import annotations

import socket
import time

import httpx

from openmdr.respond.connectors.base import RetryPolicy
from openmdr.respond.connectors.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify
from openmdr.respond.connectors.webhook import WebhookNotifier, WebhookSender
from tests.respond.conftest import Receiver


def test_receiver_verifies_the_signature(receiver: Receiver) -> None:
    sender = WebhookSender(receiver.url, receiver.secret)
    answer = sender.send("response.notification", {"tenant": "acme", "message": "Grüße"}, "d-1")
    assert answer.status == 200
    (got,) = receiver.requests
    assert got.verified and got.event == "response.notification" and got.delivery == "d-1"
    assert got.payload == {"tenant": "acme", "message": "Grüße"}


def test_wrong_secret_tampered_body_and_replayed_timestamp_are_rejected(receiver: Receiver) -> None:
    wrong = WebhookNotifier(
        WebhookSender(receiver.url, b"not-the-secret"), RetryPolicy(attempts=2), sleep=lambda s: None
    )
    delivered, error = wrong.notify("x", {"a": 1}, "d-2")
    assert not delivered and "401" in (error or "") and receiver.rejected == 1  # 4xx: not retried
    body = b'{"a":1}'
    ts = int(time.time())
    headers = {SIGNATURE_HEADER: sign(receiver.secret, ts, body), TIMESTAMP_HEADER: str(ts)}
    assert httpx.post(receiver.url, content=b'{"a":2}', headers=headers).status_code == 401
    old = ts - 3600
    stale = {SIGNATURE_HEADER: sign(receiver.secret, old, body), TIMESTAMP_HEADER: str(old)}
    assert httpx.post(receiver.url, content=body, headers=stale).status_code == 401
    assert httpx.post(receiver.url, content=body, headers=headers).status_code == 200
    assert not verify(receiver.secret, str(ts), "sha256=" + "0" * 64, body, ts)


def test_notifier_retries_with_backoff(receiver: Receiver) -> None:
    delays: list[float] = []
    notifier = WebhookNotifier(WebhookSender(receiver.url, receiver.secret), RetryPolicy(attempts=4, base_delay=1.0),
                               sleep=delays.append)  # fmt: skip
    receiver.fail_next = [503, 429, 500]
    delivered, error = notifier.notify("response.approval_requested", {"action_id": "x"}, "d-3")
    assert delivered and error is None and delays == [1.0, 2.0, 4.0]
    assert [r.delivery for r in receiver.requests] == ["d-3"] * 4
    receiver.fail_next = [503] * 4
    delivered, error = notifier.notify("e", {}, "d-4")
    assert not delivered and "503" in (error or "")


def test_unreachable_receiver_is_a_retryable_failure() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    notifier = WebhookNotifier(WebhookSender(f"http://127.0.0.1:{port}/", b"k", timeout=1), RetryPolicy(attempts=2),
                               sleep=lambda s: None)  # fmt: skip
    delivered, error = notifier.notify("e", {}, "d-5")
    assert not delivered and "unreachable" in (error or "")
