"""Session fixtures of the detection tests: the whole SigmaHQ library compiled once."""

from __future__ import annotations

from pathlib import Path

import pytest

from openmdr.detect import Engine, RuleLibrary, load_rules

LIBRARY_DIRS = ("rules", "rules-emerging-threats", "rules-threat-hunting")


@pytest.fixture(scope="session")
def sigma_root(shared_root: Path) -> Path:
    """``shared/sigma`` (SigmaHQ rules and regression data, DRL 1.1)."""
    root = shared_root / "sigma"
    if not root.is_dir():
        pytest.fail(f"{root} is missing")
    return root


@pytest.fixture(scope="session")
def full_library(sigma_root: Path) -> RuleLibrary:
    """The WHOLE SigmaHQ library: rules, emerging threats and threat hunting."""
    return load_rules([sigma_root / d for d in LIBRARY_DIRS])


@pytest.fixture(scope="session")
def full_engine(full_library: RuleLibrary, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """An engine with the whole library compiled (cold, into a session-private cache)."""
    engine = Engine(cache_dir=tmp_path_factory.mktemp("sigma-cache"))
    engine.compile(full_library)
    return engine
