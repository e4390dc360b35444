"""The connector contract: how the response engine reaches real systems, and how calls are retried.

A connector runs some action kinds (:attr:`Connector.kinds`) for a tenant.  The engine calls
:meth:`Connector.execute` with the :class:`~openmdr.models.action.ActionRecord`; the connector
does the one thing asked, idempotently (asking twice leaves the same state and succeeds), and
returns a :class:`ConnectorResult` whose ``prior`` describes the state *before* the action so a
rollback can restore exactly that.  Failures raise :class:`ConnectorError`; ``retryable`` tells
the engine whether trying again can help (network errors, timeouts, 5xx) or not (bad target,
refused credentials).  The engine owns retries, backoff and the per-attempt timeout
(:func:`call_with_retry`), so connectors make single attempts with bounded I/O timeouts.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

from openmdr.models.action import ActionRecord

T = TypeVar("T")


class ConnectorError(Exception):
    """A connector call that did not succeed; ``retryable`` says whether another attempt may."""

    def __init__(self, message: str, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class ConnectorTimeout(ConnectorError):
    """One attempt took longer than the engine's per-attempt timeout."""


@dataclass(slots=True)
class ConnectorResult:
    """What a connector reports after doing an action: details for the record, the prior state for rollback."""

    details: dict[str, Any] = field(default_factory=dict)
    prior: dict[str, Any] | None = None


@runtime_checkable
class Connector(Protocol):
    """Anything that runs some action kinds against a real system."""

    name: str
    kinds: frozenset[str]

    def execute(self, action: ActionRecord) -> ConnectorResult:
        """Do ``action`` once (idempotently); raise :class:`ConnectorError` on failure."""
        ...


class ConnectorRegistry:
    """Which connector runs which action kind for which tenant.

    Tenant-specific connectors (a tenant's own directory, EDR console, webhook) come first;
    shared ones (the platform's block lists) serve every tenant.  A tenant with no
    connector for a kind gets ``None`` and the engine records the action as failed with
    that reason.
    """

    def __init__(
        self, shared: Iterable[Connector] = (), per_tenant: Mapping[str, Sequence[Connector]] | None = None
    ) -> None:
        self.shared = list(shared)
        self.per_tenant = {t: list(cs) for t, cs in (per_tenant or {}).items()}

    def add(self, connector: Connector, tenant: str | None = None) -> None:
        """Register ``connector`` for one tenant (or every tenant when ``tenant`` is None)."""
        if tenant is None:
            self.shared.append(connector)
        else:
            self.per_tenant.setdefault(tenant, []).append(connector)

    def for_kind(self, tenant: str, kind: str) -> Connector | None:
        """The connector that runs ``kind`` for ``tenant``, or None."""
        for connector in (*self.per_tenant.get(tenant, ()), *self.shared):
            if kind in connector.kinds:
                return connector
        return None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a connector call is tried: exponential backoff, bounded attempts."""

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    attempt_timeout: float = 15.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))


@dataclass(slots=True)
class RetryOutcome:
    """The result of :func:`call_with_retry`: the value or the last error, and every attempt's error."""

    value: Any = None
    error: ConnectorError | None = None
    attempts: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when an attempt succeeded."""
        return self.error is None


_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="openmdr-connector")


def call_with_retry(
    fn: Callable[[], T], policy: RetryPolicy, sleep: Callable[[float], None] = time.sleep
) -> RetryOutcome:
    """Call ``fn`` up to ``policy.attempts`` times with backoff; each attempt is cut off at its timeout.

    A non-retryable :class:`ConnectorError` stops at once; any other exception counts as a
    non-retryable failure too (a connector bug must not be retried into a storm).  A timed-out
    attempt is abandoned (connectors bound their own I/O, so its thread ends on its own).
    """
    out = RetryOutcome()
    for attempt in range(1, policy.attempts + 1):
        out.attempts = attempt
        future = _POOL.submit(fn)
        try:
            out.value = future.result(timeout=policy.attempt_timeout)
            out.error = None
            return out
        except concurrent.futures.TimeoutError:
            future.cancel()
            err: ConnectorError = ConnectorTimeout(f"attempt {attempt} timed out after {policy.attempt_timeout:g}s")
        except ConnectorError as exc:
            err = exc
        except Exception as exc:  # a connector bug: record it, never retry it
            err = ConnectorError(f"{type(exc).__name__}: {exc}", retryable=False)
        out.error = err
        out.errors.append(str(err))
        if not err.retryable or attempt == policy.attempts:
            break
        sleep(policy.delay(attempt))
    return out
