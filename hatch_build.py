"""Package build hook: compile the import hot path with Cython when it can, else stay pure Python.

The modules listed in ``openmdr._accelerated.ACCELERATED`` are compiled in place (next to
their sources, so editable installs use them) with Python semantics: no type
declarations, annotations ignored.  Their digests go to ``src/openmdr/_compiled.json``,
which lets a later source edit fall back to the source instead of running a stale
compiled module.  Any failure (no Cython, no compiler) leaves a pure-Python package and
says so; ``OPENMDR_PURE_PYTHON=1`` skips the compilation.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from types import ModuleType
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

_ACCELERATED_SOURCE = Path("src", "openmdr", "_accelerated.py")


def _accelerated(root: Path) -> ModuleType:
    """``openmdr._accelerated`` loaded from its file (it needs only the standard library)."""
    spec = importlib.util.spec_from_file_location("openmdr_accelerated_build", root / _ACCELERATED_SOURCE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class CompileHotPath(BuildHookInterface):
    """Compiles the hot-path modules for wheel and editable builds."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        """Compile in place, record the digests and mark the wheel platform-specific; on failure, warn only."""
        if self.target_name != "wheel" or os.environ.get("OPENMDR_PURE_PYTHON"):
            return
        root = Path(self.root)
        accelerated = _accelerated(root)
        modules = list(accelerated.ACCELERATED)
        try:
            built = _compile(root, modules)
        except Exception as exc:  # the package works without it: say so and build pure Python
            self.app.display_warning(f"openmdr: not compiling the hot path ({type(exc).__name__}: {exc})")
            return
        manifest = root / "src" / "openmdr" / "_compiled.json"
        digests = {m: accelerated.source_digest(root / _source(m)) for m in modules}
        manifest.write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        build_data["artifacts"].extend(
            [*(p.relative_to(root).as_posix() for p in built), manifest.relative_to(root).as_posix()]
        )
        build_data["pure_python"] = False
        build_data["infer_tag"] = True


def _source(module: str) -> Path:
    return Path("src", *module.split(".")).with_suffix(".py")


def _compile(root: Path, modules: list[str]) -> list[Path]:
    """Cythonize and build ``modules`` in place under ``src/``; the built extension files."""
    from Cython.Build import cythonize
    from setuptools import Distribution, Extension

    here = Path.cwd()
    os.chdir(root)
    try:
        extensions = [Extension(m, [str(_source(m))]) for m in modules]
        compiled = cythonize(
            extensions,
            compiler_directives={"language_level": "3", "annotation_typing": False, "binding": True},
            build_dir=str(Path("build", "cython")),
            quiet=True,
        )
        dist = Distribution({"name": "openmdr", "ext_modules": compiled, "package_dir": {"": "src"}})
        command = dist.get_command_obj("build_ext")
        command.inplace = True
        command.build_temp = str(Path("build", "temp"))
        dist.run_command("build_ext")
        return [root / command.get_ext_fullpath(m) for m in modules]
    finally:
        os.chdir(here)
