"""One generated week shared by the generator tests (the demo's default configuration)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from openmdr.generator import GeneratorConfig, Manifest, generate, telemetry_paths


@pytest.fixture(scope="session")
def week(tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    """The default three-tenant week (what ``openmdr demo`` generates)."""
    return generate(tmp_path_factory.mktemp("week"), GeneratorConfig())


@pytest.fixture(scope="session")
def labels(week: Manifest) -> list[dict[str, Any]]:
    """The ground truth written with the week."""
    return orjson.loads((week.out / "labels.json").read_bytes())


def telemetry_dirs(out: Path, tenant: str) -> list[Path]:
    """A tenant's telemetry folders (everything but the asset inventory)."""
    return telemetry_paths(out, tenant)
