"""The EDR connector contract, and an EDR connector that drives any EDR through a signed webhook.

Subclass :class:`EdrConnector` to add SentinelOne, CrowdStrike, Defender for Endpoint or
another EDR: implement the five methods for one host each, idempotently, raising
:class:`~openmdr.respond.connectors.base.ConnectorError` (``retryable`` or not) on failure,
and return an :class:`EdrResult` whose ``prior`` states what was true before (for example
``{"isolated": True}`` when the host was already isolated, so rollback leaves it isolated).
The engine never sees vendor APIs; the full contract is in ``docs/response.md``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from openmdr.models.action import ActionRecord
from openmdr.respond.connectors.base import ConnectorError, ConnectorResult
from openmdr.respond.connectors.webhook import WebhookSender

#: Action kinds every EDR connector runs.
EDR_KINDS: frozenset[str] = frozenset(
    {"isolate_host", "unisolate_host", "kill_process", "quarantine_file", "restore_file"}
)


@dataclass(frozen=True, slots=True)
class EdrRequest:
    """One request to an EDR: which tenant and host, the action id (the idempotency key), the details.

    ``process`` (name or pid) is set for ``kill_process``; ``file`` (path or hash) for
    quarantine and restore; ``prior`` is the state the original action reported, given on
    rollback so the connector restores it.
    """

    tenant: str
    action_id: str
    host: str
    case_id: str | None = None
    process: str | None = None
    file: str | None = None
    prior: dict[str, Any] | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class EdrResult:
    """What the EDR reported: details for the record and the prior state for rollback."""

    details: dict[str, Any] = field(default_factory=dict)
    prior: dict[str, Any] | None = None


class EdrConnector(ABC):
    """Base class of every EDR connector: maps action records to five host-level operations."""

    name: str = "edr"
    kinds: frozenset[str] = EDR_KINDS

    def execute(self, action: ActionRecord) -> ConnectorResult:
        """Dispatch ``action`` to the matching operation."""
        host = action.asset or (action.target if action.kind in ("isolate_host", "unisolate_host") else None)
        if not host:
            raise ConnectorError(f"{action.kind} needs the host it runs on", retryable=False)
        request = EdrRequest(
            tenant=action.tenant, action_id=action.action_id, host=host, case_id=action.case_id,
            process=action.target if action.kind == "kill_process" else None,
            file=action.target if action.kind in ("quarantine_file", "restore_file") else None,
            prior=action.params.get("prior"), params=dict(action.params),
        )  # fmt: skip
        operation = {
            "isolate_host": self.isolate_host, "unisolate_host": self.unisolate_host,
            "kill_process": self.kill_process, "quarantine_file": self.quarantine_file,
            "restore_file": self.restore_file,
        }.get(action.kind)  # fmt: skip
        if operation is None:
            raise ConnectorError(f"{self.name} does not run {action.kind}", retryable=False)
        result = operation(request)
        return ConnectorResult(result.details, result.prior)

    @abstractmethod
    def isolate_host(self, request: EdrRequest) -> EdrResult:
        """Network-isolate ``request.host`` (keeping the EDR's own channel); succeed if already isolated."""

    @abstractmethod
    def unisolate_host(self, request: EdrRequest) -> EdrResult:
        """Lift the isolation of ``request.host``; succeed if not isolated."""

    @abstractmethod
    def kill_process(self, request: EdrRequest) -> EdrResult:
        """Terminate ``request.process`` on ``request.host``; succeed if it is not running."""

    @abstractmethod
    def quarantine_file(self, request: EdrRequest) -> EdrResult:
        """Quarantine ``request.file`` on ``request.host``; succeed if already quarantined."""

    @abstractmethod
    def restore_file(self, request: EdrRequest) -> EdrResult:
        """Restore ``request.file`` from quarantine on ``request.host``."""


class WebhookEdrConnector(EdrConnector):
    """An EDR reached through a signed webhook (an EDR's automation endpoint, a SOAR, a relay).

    Each operation POSTs ``{"operation", "tenant", "action_id", "host", "process", "file",
    "case_id", "prior"}`` with the event ``edr.<operation>``; the receiver answers 2xx with
    optional ``{"details": {...}, "prior": {...}}``.  The delivery id is the action id, so a
    retried request is recognisable as the same one.
    """

    def __init__(self, sender: WebhookSender, name: str = "edr-webhook") -> None:
        self.sender = sender
        self.name = name

    def _call(self, operation: str, request: EdrRequest) -> EdrResult:
        payload = {
            "operation": operation, "tenant": request.tenant, "action_id": request.action_id,
            "host": request.host, "process": request.process, "file": request.file, "case_id": request.case_id,
            "prior": request.prior,
        }  # fmt: skip
        answer = self.sender.send(f"edr.{operation}", payload, request.action_id)
        details = answer.body.get("details") if isinstance(answer.body.get("details"), dict) else {}
        prior = answer.body.get("prior") if isinstance(answer.body.get("prior"), dict) else None
        return EdrResult({"http_status": answer.status, **details}, prior)

    def isolate_host(self, request: EdrRequest) -> EdrResult:
        """Ask the receiver to isolate the host."""
        return self._call("isolate_host", request)

    def unisolate_host(self, request: EdrRequest) -> EdrResult:
        """Ask the receiver to lift the isolation."""
        return self._call("unisolate_host", request)

    def kill_process(self, request: EdrRequest) -> EdrResult:
        """Ask the receiver to kill the process."""
        return self._call("kill_process", request)

    def quarantine_file(self, request: EdrRequest) -> EdrResult:
        """Ask the receiver to quarantine the file."""
        return self._call("quarantine_file", request)

    def restore_file(self, request: EdrRequest) -> EdrResult:
        """Ask the receiver to restore the file."""
        return self._call("restore_file", request)
