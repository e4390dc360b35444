"""Loading a Sigma rule library from directories, single files and release zips.

:func:`load_rules` only *reads* the rule files (bytes and where they came from) and
hashes their content; parsing with pySigma happens in the compiler, and only when the
compiled form is not already in the on-disk cache.  That is what makes a warm start
fast.  Everything that cannot be read is kept as a :class:`RuleProblem` and reported,
never skipped silently.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

#: Largest single rule file accepted (SigmaHQ rules are a few KiB).
MAX_RULE_BYTES = 1 << 20
#: Most bytes read from one archive (guards against zip bombs).
MAX_ARCHIVE_BYTES = 512 << 20
RULE_SUFFIXES = (".yml", ".yaml")


@dataclass(frozen=True, slots=True)
class RuleSource:
    """One rule file's text and where it came from (``dir/x.yml`` or ``rules.zip!x.yml``)."""

    path: str
    text: bytes


@dataclass(frozen=True, slots=True)
class RuleProblem:
    """A rule file or rule that cannot be used, with the reason."""

    path: str
    reason: str
    rule_id: str | None = None
    title: str | None = None
    status: str = "invalid"  #: ``invalid`` (cannot be parsed) or ``unsupported`` (parsed, not evaluable)


@dataclass
class RuleLibrary:
    """The rule files of a library, read but not yet parsed."""

    sources: list[RuleSource] = field(default_factory=list)
    problems: list[RuleProblem] = field(default_factory=list)

    @cached_property
    def content_hash(self) -> str:
        """SHA-256 over every file's path and content (the compile cache key)."""
        h = hashlib.sha256()
        for src in sorted(self.sources, key=lambda s: s.path):
            h.update(src.path.encode("utf-8", "surrogateescape"))
            h.update(b"\x00")
            h.update(hashlib.sha256(src.text).digest())
        return h.hexdigest()

    def __len__(self) -> int:
        return len(self.sources)


def _read_file(path: Path, library: RuleLibrary) -> None:
    try:
        size = path.stat().st_size
        if size > MAX_RULE_BYTES:
            library.problems.append(RuleProblem(str(path), f"file larger than {MAX_RULE_BYTES} bytes"))
            return
        library.sources.append(RuleSource(str(path), path.read_bytes()))
    except OSError as exc:
        library.problems.append(RuleProblem(str(path), f"cannot read: {exc.strerror or exc}"))


def _read_zip(path: Path, library: RuleLibrary) -> None:
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        library.problems.append(RuleProblem(str(path), f"not a readable zip archive: {exc}"))
        return
    total = 0
    with archive:
        for info in sorted(archive.infolist(), key=lambda i: i.filename):
            name = info.filename
            if info.is_dir() or not name.lower().endswith(RULE_SUFFIXES) or "__MACOSX" in name:
                continue
            where = f"{path}!{name}"
            if info.file_size > MAX_RULE_BYTES:
                library.problems.append(RuleProblem(where, f"member larger than {MAX_RULE_BYTES} bytes"))
                continue
            total += info.file_size
            if total > MAX_ARCHIVE_BYTES:
                library.problems.append(RuleProblem(where, f"archive holds more than {MAX_ARCHIVE_BYTES} bytes"))
                break
            try:
                with archive.open(info) as member:
                    data = member.read(MAX_RULE_BYTES + 1)
            except (OSError, zipfile.BadZipFile, RuntimeError, EOFError) as exc:
                library.problems.append(RuleProblem(where, f"cannot extract: {exc}"))
                continue
            if len(data) > MAX_RULE_BYTES:
                library.problems.append(RuleProblem(where, "member larger than declared"))
                continue
            library.sources.append(RuleSource(where, data))


def load_rules(paths: Iterable[str | Path]) -> RuleLibrary:
    """Read every Sigma rule under ``paths`` (directories recursively, ``.yml`` files, zips).

    Raises :class:`FileNotFoundError` for a path that does not exist; anything unreadable
    below an existing path becomes a :class:`RuleProblem` in the library.
    """
    library = RuleLibrary()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix.lower() in RULE_SUFFIXES and p.is_file())
            for f in files:
                _read_file(f, library)
        elif path.is_file():
            if path.suffix.lower() == ".zip" or zipfile.is_zipfile(path):
                _read_zip(path, library)
            else:
                _read_file(path, library)
        else:
            raise FileNotFoundError(f"no rule file or directory at {path}")
    return library


def library_from_texts(texts: Iterable[tuple[str, str | bytes]]) -> RuleLibrary:
    """A library from in-memory rule texts (``(name, yaml)`` pairs), e.g. for tests or an API."""
    library = RuleLibrary()
    for name, text in texts:
        library.sources.append(RuleSource(name, text.encode() if isinstance(text, str) else text))
    return library
