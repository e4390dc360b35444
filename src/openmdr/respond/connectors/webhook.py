"""Signed webhooks: notifications to SOAR/ticketing/chat, and actions delegated to a remote system.

:class:`WebhookSender` POSTs JSON signed with HMAC-SHA256 (see :mod:`.signing`), one attempt at
a time with a bounded timeout, classifying failures for the retry loop: connection errors,
timeouts, 408/429 and 5xx may be retried; other 4xx may not.  :class:`WebhookNotifier` adds
retries with backoff for notifications; :class:`WebhookActionConnector` runs action kinds by
webhook (the engine retries those).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from openmdr.models.action import ActionRecord
from openmdr.respond.connectors.base import ConnectorError, ConnectorResult, RetryPolicy, call_with_retry
from openmdr.respond.connectors.signing import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
)


@dataclass(frozen=True, slots=True)
class WebhookResponse:
    """A receiver's answer: status code and JSON body (empty when it sent none)."""

    status: int
    body: dict[str, Any]


class WebhookSender:
    """Signs and sends one JSON webhook per call to one URL."""

    def __init__(
        self,
        url: str,
        secret: str | bytes,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url
        self.secret = secret.encode() if isinstance(secret, str) else secret
        self.timeout = timeout
        self.clock = clock
        self._client = httpx.Client(timeout=timeout, transport=transport, follow_redirects=False)

    def send(self, event: str, payload: dict[str, Any], delivery_id: str) -> WebhookResponse:
        """POST ``payload`` once; raise :class:`ConnectorError` (retryable or not) unless the receiver says 2xx."""
        body = orjson.dumps(payload, default=str, option=orjson.OPT_SORT_KEYS)
        ts = int(self.clock())
        headers = {
            "Content-Type": "application/json", SIGNATURE_HEADER: sign(self.secret, ts, body),
            TIMESTAMP_HEADER: str(ts), DELIVERY_HEADER: delivery_id, EVENT_HEADER: event,
            "Idempotency-Key": delivery_id, "User-Agent": "openmdr-response/1",
        }  # fmt: skip
        try:
            response = self._client.post(self.url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise ConnectorError(f"webhook {self.url} timed out: {exc}") from None
        except httpx.HTTPError as exc:
            raise ConnectorError(f"webhook {self.url} unreachable: {type(exc).__name__}: {exc}") from None
        if response.status_code >= 300:
            retryable = response.status_code in (408, 425, 429) or response.status_code >= 500
            raise ConnectorError(f"webhook {self.url} answered {response.status_code}: {response.text[:200]}",
                                 retryable=retryable)  # fmt: skip
        try:
            data = response.json() if response.content else {}
        except ValueError:
            data = {}
        return WebhookResponse(response.status_code, data if isinstance(data, dict) else {"result": data})

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()


class WebhookNotifier:
    """Delivers notifications (playbook notify steps, approval requests, escalations) by signed webhook.

    Retries with exponential backoff; a notification that still fails is reported to the
    caller (who audits it) rather than raised, because a chat outage must not stop containment.
    """

    def __init__(self, sender: WebhookSender, retry: RetryPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:  # fmt: skip
        self.sender = sender
        self.retry = retry or RetryPolicy(attempts=4, base_delay=1.0, attempt_timeout=sender.timeout + 5)
        self.sleep = sleep

    def notify(self, event: str, payload: dict[str, Any], delivery_id: str) -> tuple[bool, str | None]:
        """Send one notification; returns (delivered, last error)."""
        out = call_with_retry(lambda: self.sender.send(event, payload, delivery_id), self.retry, self.sleep)
        return out.ok, None if out.error is None else str(out.error)


class WebhookActionConnector:
    """Runs action kinds by asking a remote system (SOAR, IdP automation) over a signed webhook.

    The request body is the action (``tenant``, ``action_id``, ``kind``, ``target``,
    ``params``, ``case_id``); the receiver answers 2xx, optionally with
    ``{"details": {...}, "prior": {...}}``.
    """

    def __init__(self, name: str, sender: WebhookSender, kinds: Iterable[str]) -> None:
        self.name = name
        self.sender = sender
        self.kinds = frozenset(kinds)

    def execute(self, action: ActionRecord) -> ConnectorResult:
        """POST the action once; the delivery id is the action id, so retries are recognisable."""
        payload = {
            "tenant": action.tenant, "action_id": action.action_id, "kind": action.kind, "target": action.target,
            "asset": action.asset, "params": action.params, "case_id": action.case_id,
            "rollback_of": action.rollback_of,
        }  # fmt: skip
        answer = self.sender.send(f"action.{action.kind}", payload, action.action_id)
        details = answer.body.get("details") if isinstance(answer.body.get("details"), dict) else {}
        prior = answer.body.get("prior") if isinstance(answer.body.get("prior"), dict) else None
        return ConnectorResult({"http_status": answer.status, **details}, prior)
