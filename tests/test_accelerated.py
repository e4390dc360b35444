"""The compiled hot path: in use where it was built, never run stale after a source edit."""

from __future__ import annotations

import importlib
import importlib.machinery
import json
import os
import sys
from pathlib import Path

import pytest

from openmdr import _accelerated


@pytest.mark.skipif(not os.environ.get("CI"), reason="CI builds with Cython; elsewhere it may be pure Python")
def test_ci_runs_the_compiled_modules() -> None:
    """The suite tests what the package ships: every hot-path module compiled, none stale."""
    assert _accelerated.stale_modules() == {}
    assert _accelerated.compiled_in_use() == list(_accelerated.ACCELERATED)


def test_a_changed_source_is_imported_instead_of_its_stale_compiled_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "openmdr_stale_probe"
    package.mkdir()
    (package / "__init__.py").write_text("")
    source = package / "hot.py"
    source.write_text("ANSWER = 'from source'\n")
    # what the build left beside it: a compiled file (here unloadable, so using it would fail loudly)
    compiled = source.with_name("hot" + importlib.machinery.EXTENSION_SUFFIXES[0])
    compiled.write_bytes(b"\x7fELF not really")
    manifest = tmp_path / "_compiled.json"
    manifest.write_text(json.dumps({"openmdr_stale_probe.hot": "digest of an older source"}))
    monkeypatch.setattr(_accelerated, "MANIFEST", manifest)
    monkeypatch.setattr(_accelerated, "_PACKAGE_ROOT", tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))

    assert _accelerated.stale_modules() == {"openmdr_stale_probe.hot": source}
    with pytest.warns(RuntimeWarning, match="changed since the package was built"):
        assert _accelerated.install() == ["openmdr_stale_probe.hot"]
    try:
        assert importlib.import_module("openmdr_stale_probe.hot").ANSWER == "from source"
    finally:
        sys.modules.pop("openmdr_stale_probe.hot", None)
        sys.modules.pop("openmdr_stale_probe", None)

    manifest.write_text(json.dumps({"openmdr_stale_probe.hot": _accelerated.source_digest(source)}))
    assert _accelerated.stale_modules() == {}  # source and build agree: the compiled module is the one to use
    compiled.unlink()
    manifest.write_text(json.dumps({"openmdr_stale_probe.hot": "anything"}))
    assert _accelerated.stale_modules() == {}  # nothing compiled: plain imports already use the source


def test_version_says_how_much_of_the_hot_path_runs_compiled() -> None:
    from typer.testing import CliRunner

    from openmdr.cli.main import app

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    compiled = len(_accelerated.compiled_in_use())
    assert f"hot path compiled: {compiled} of {len(_accelerated.ACCELERATED)} modules" in result.output
