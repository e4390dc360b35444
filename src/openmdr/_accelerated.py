"""The import hot path, compiled: which modules the build compiles, and using them only while they are current.

The package build (``hatch_build.py``) compiles the modules of :data:`ACCELERATED` with
Cython, unchanged Python source and Python semantics (no type declarations), when Cython
and a C compiler are there, and records a digest of each compiled source in
``_compiled.json``.  Without them the package stays pure Python; nothing else differs.

A compiled module sits next to its source and Python imports it first, so a source edited
after the build would silently not run.  :func:`install` (run when ``openmdr`` is
imported) compares every compiled module's source with its recorded digest and sends the
import of a changed one to its source instead, with a warning that says how to rebuild.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

#: Modules compiled by the build: the per-record path of file import (framing aside).
ACCELERATED: tuple[str, ...] = (
    "openmdr.normalize.parsers.windows",
    "openmdr.normalize.parsers.jsonlines",
    "openmdr.pipeline",
    "openmdr.models.event",
)
#: Written by the build: module name -> SHA-256 of the source it was compiled from.
MANIFEST = Path(__file__).with_name("_compiled.json")
_PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def source_path(module: str) -> Path:
    """The ``.py`` file of ``module`` (a name inside this package)."""
    return _PACKAGE_ROOT.joinpath(*module.split(".")).with_suffix(".py")


def source_digest(path: Path) -> str:
    """SHA-256 of a source file's bytes, as the build records it."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _has_compiled(source: Path) -> bool:
    return any(source.with_name(source.stem + suffix).exists() for suffix in importlib.machinery.EXTENSION_SUFFIXES)


class _SourceWhenStale(importlib.abc.MetaPathFinder):
    """Imports the listed modules from their source, ahead of the compiled files beside it."""

    def __init__(self, sources: dict[str, Path]) -> None:
        self.sources = sources

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        source = self.sources.get(fullname)
        return importlib.util.spec_from_file_location(fullname, source) if source is not None else None


def stale_modules() -> dict[str, Path]:
    """Compiled modules whose source no longer matches the digest recorded at build time."""
    try:
        recorded = json.loads(MANIFEST.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    stale: dict[str, Path] = {}
    for name, digest in recorded.items() if isinstance(recorded, dict) else ():
        source = source_path(name)
        try:
            if _has_compiled(source) and source_digest(source) != digest:
                stale[name] = source
        except OSError:
            continue
    return stale


def install() -> list[str]:
    """Route imports of stale compiled modules to their source; returns their names (usually none)."""
    stale = stale_modules()
    if stale:
        sys.meta_path.insert(0, _SourceWhenStale(stale))
        warnings.warn(
            f"openmdr: {', '.join(sorted(stale))} changed since the package was built; running the source "
            "(slower). Reinstall (pip install -e .) to compile it again.",
            RuntimeWarning,
            stacklevel=2,
        )
    return sorted(stale)


def compiled_in_use() -> list[str]:
    """The modules of :data:`ACCELERATED` that are running compiled in this process (imports them)."""
    names = []
    for name in ACCELERATED:
        module = importlib.import_module(name)
        if not str(getattr(module, "__file__", "")).endswith(".py"):
            names.append(name)
    return names
