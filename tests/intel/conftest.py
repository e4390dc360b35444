"""Fixtures of the threat-intelligence tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from openmdr.store.lake import EventLake
from tests.intel.helpers import Clock


@pytest.fixture()
def clock() -> Clock:
    """A controllable clock at ``helpers.NOW``."""
    return Clock()


@pytest.fixture()
def lake(tmp_path: Path) -> EventLake:
    """An empty event lake in tmp_path."""
    return EventLake(tmp_path / "lake")
