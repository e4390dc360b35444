"""A collecting record sink: the test double of the pipeline for transport tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from openmdr.models import RawRecord, Rejection


@dataclass
class CollectedReport:
    """The accounting a sink returns (same fields as the pipeline's IngestReport)."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0


class CollectingSink:
    """Keeps every submitted item with its tenant; can be slowed down or made to fail."""

    def __init__(self, delay: float = 0.0, refuse: Callable[[str], Exception | None] | None = None) -> None:
        self.calls: list[tuple[str, list[RawRecord | Rejection]]] = []
        self.delay = delay
        self.refuse = refuse
        self._cond = threading.Condition()

    def submit(self, tenant: str, items: Iterable[RawRecord | Rejection]) -> CollectedReport:
        """Record the batch; count records as stored and rejections as rejected."""
        batch = list(items)
        if self.refuse is not None and (error := self.refuse(tenant)) is not None:
            raise error
        if self.delay:
            time.sleep(self.delay)
        with self._cond:
            self.calls.append((tenant, batch))
            self._cond.notify_all()
        stored = sum(isinstance(i, RawRecord) for i in batch)
        return CollectedReport(len(batch), stored, 0, len(batch) - stored)

    @property
    def items(self) -> list[tuple[str, RawRecord | Rejection]]:
        """Every item so far with the tenant it was submitted for."""
        with self._cond:
            return [(tenant, item) for tenant, batch in self.calls for item in batch]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[tuple[str, RawRecord | Rejection]]:
        """Wait until at least ``count`` items arrived (or the timeout passed); return them."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while sum(len(b) for _, b in self.calls) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
        return self.items
