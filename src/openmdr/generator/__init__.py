"""Realistic multi-tenant telemetry with labelled attack chains (``openmdr generate``).

>>> manifest = generate(Path("/tmp/week"), GeneratorConfig(tenants=3, days=7, seed=7))  # doctest: +SKIP
>>> print(manifest.summary())                                                          # doctest: +SKIP

:func:`generate` writes, under ``out``:

* ``tenants.json``: the tenants (the :class:`~openmdr.models.TenantInfo` fields plus context);
* ``<tenant>/assets.csv``: each tenant's asset inventory (shadow-IT devices are missing on purpose);
* ``<tenant>/windows/{security,sysmon}.jsonl``, ``<tenant>/linux/auth.log``,
  ``<tenant>/firewall/fortigate.cef``, ``<tenant>/zeek/{conn,dns,http,ssl}.log``: a week of
  activity in the formats the real sources write;
* ``labels.json``: the ground truth, one entry per attack chain (see docs/generator.md);
* ``manifest.json``: configuration, record counts per file, the attacker's indicators.

The same configuration gives the same bytes: every random choice comes from a stream
seeded by the configuration and the purpose, and nothing depends on the wall clock.
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson

from openmdr.generator.background import Background
from openmdr.generator.chains import (
    Chain,
    Indicators,
    acme_chain,
    globex_c2_contact,
    globex_chain,
    initech_chain,
    pick_indicators,
)
from openmdr.generator.clock import LocalClock, iso_z
from openmdr.generator.emit import TenantOutput
from openmdr.generator.telemetry import Telemetry
from openmdr.generator.world import (
    GeoPicker,
    TenantWorld,
    build_world,
    pick_vendor_sites,
    profile_for,
    rng_for,
)

#: First day of the default week: a Monday.
DEFAULT_START = date(2026, 2, 2)
#: Country each tenant's travelling employee visits (the "user travelling" near-miss).
_TRAVEL = {"acme": "ES", "globex": "GB", "initech": "JP", "umbrella": "FR", "hooli": "CA", "wayne": "SG"}


@dataclass(frozen=True, slots=True)
class GeneratorConfig:
    """What to generate: how many tenants, how many days from which date, the seed, the volume."""

    tenants: int = 3
    days: int = 7
    seed: int = 7
    scale: float = 1.0
    start: date = DEFAULT_START

    def __post_init__(self) -> None:
        if self.tenants < 1:
            raise ValueError("tenants must be at least 1")
        if self.days < 1:
            raise ValueError("days must be at least 1")
        if not self.scale > 0:
            raise ValueError("scale must be positive")


@dataclass(slots=True)
class Manifest:
    """What a generation wrote: per-tenant record counts, the labelled chains, where it all is."""

    out: Path
    config: GeneratorConfig
    tenants: list[str]
    counts: dict[str, dict[str, int]]
    chains: list[dict[str, Any]]
    indicators: dict[str, str]
    shadow_it: dict[str, list[dict[str, str]]]
    seconds: float = 0.0
    skipped_chains: list[str] = field(default_factory=list)

    @property
    def total_records(self) -> int:
        """Records written over all tenants and files."""
        return sum(sum(files.values()) for files in self.counts.values())

    def summary(self) -> str:
        """A few readable lines: records per tenant and the chains hidden in them."""
        lines = [
            f"{self.total_records:,} records for {len(self.tenants)} tenants, {self.config.days} days "
            f"from {self.config.start.isoformat()} (seed {self.config.seed}) in {self.seconds:.1f}s"
        ]
        for tenant in self.tenants:
            files = self.counts.get(tenant, {})
            detail = ", ".join(f"{Path(k).name} {v:,}" for k, v in sorted(files.items()))
            lines.append(f"  {tenant}: {sum(files.values()):,} ({detail})")
        for chain in self.chains:
            lines.append(
                f"  chain {chain['id']} [{chain['tenant']}]: {len(chain['steps'])} steps from {chain['first_event']}"
            )
        for cid in self.skipped_chains:
            lines.append(f"  chain {cid}: not generated (outside the configured days or tenants)")
        return "\n".join(lines)


def generate(out: Path, config: GeneratorConfig | None = None) -> Manifest:
    """Write a week (``config.days``) of multi-tenant telemetry with labelled attack chains to ``out``."""
    config = config or GeneratorConfig()
    started = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    geo = GeoPicker.open_default()
    try:
        vendors = pick_vendor_sites(config.seed, geo)
        indicators = pick_indicators(config.seed, geo)
        worlds = [build_world(profile_for(i), config.seed, config.scale, geo, vendors) for i in range(config.tenants)]
        hotel = {w.name: geo.pick(rng_for(config.seed, w.name, "hotel"), _TRAVEL.get(w.name, "FR")) for w in worlds}
    finally:
        geo.close()
    outputs: dict[str, TenantOutput] = {}
    tels: dict[str, Telemetry] = {}
    for world in worlds:
        output = TenantOutput(world.name, LocalClock(world.profile.timezone))
        tel = Telemetry(world, output, rng_for(config.seed, world.name, "telemetry"))
        background = Background(tel, world, config.seed, config.scale)
        background.hotel_ip = hotel[world.name]
        background.run(config.start, config.days)
        outputs[world.name], tels[world.name] = output, tel
    chains, skipped = _attack_chains(config, worlds, tels, indicators)
    counts = {name: output.write(out) for name, output in outputs.items()}
    labels = [_label(chain, outputs[chain.tenant]) for chain in chains]
    (out / "labels.json").write_bytes(orjson.dumps(labels, option=orjson.OPT_INDENT_2) + b"\n")
    (out / "tenants.json").write_bytes(
        orjson.dumps([w.tenant_record() for w in worlds], option=orjson.OPT_INDENT_2) + b"\n"
    )
    shadow: dict[str, list[dict[str, str]]] = {}
    for world in worlds:
        (out / world.name).mkdir(parents=True, exist_ok=True)
        (out / world.name / "assets.csv").write_text(assets_csv(world), encoding="utf-8")
        shadow[world.name] = [{"name": h.name, "ip": h.ip} for h in world.hosts if not h.inventoried]
    manifest = Manifest(
        out=out,
        config=config,
        tenants=[w.name for w in worlds],
        counts=counts,
        chains=labels,
        indicators=asdict(indicators),
        shadow_it=shadow,
        skipped_chains=skipped,
    )
    manifest.seconds = time.perf_counter() - started
    meta = {
        "config": {**asdict(config), "start": config.start.isoformat()},
        "tenants": manifest.tenants,
        "records": counts,
        "total_records": manifest.total_records,
        "chains": [c["id"] for c in labels],
        "skipped_chains": skipped,
        "indicators": manifest.indicators,
        "shadow_it": shadow,
    }
    (out / "manifest.json").write_bytes(orjson.dumps(meta, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
    return manifest


def _attack_chains(
    config: GeneratorConfig, worlds: list[TenantWorld], tels: dict[str, Telemetry], ind: Indicators
) -> tuple[list[Chain], list[str]]:
    """Write the chains whose day falls inside the configured days of an existing tenant."""
    by_name = {w.name: w for w in worlds}
    last_day = config.start + timedelta(days=config.days - 1)

    def has_day(weekday: int) -> bool:
        """Whether the first ``weekday`` (0 = Monday) on or after the start is inside the run."""
        day = config.start + timedelta(days=(weekday - config.start.weekday()) % 7)
        return day <= last_day

    chains: list[Chain] = []
    skipped: list[str] = []
    acme = None
    if "acme" in by_name and has_day(5):
        data_end = tels["acme"].clock.local_day_start(last_day + timedelta(days=1)) - 1
        acme = acme_chain(tels["acme"], by_name["acme"], config.start, ind, config.seed, data_end)
        chains.append(acme)
    else:
        skipped.append("acme-dormant-contractor")
    if "globex" in by_name and has_day(3):
        chains.append(globex_chain(tels["globex"], by_name["globex"], config.start, ind, config.seed))
    else:
        skipped.append("globex-vpn-spray-ransomware")
    if "initech" in by_name and has_day(2):
        chains.append(initech_chain(tels["initech"], by_name["initech"], config.start, ind, config.seed))
    else:
        skipped.append("initech-credential-theft")
    if acme is not None and "globex" in by_name:
        first = _first_us(tels["acme"].out, acme)
        contact_day = first - 2 * 86_400_000_000
        if contact_day >= tels["globex"].clock.local_day_start(config.start):
            chains.append(globex_c2_contact(tels["globex"], by_name["globex"], first, ind, config.seed))
        else:
            skipped.append("globex-c2-contact")
    else:
        skipped.append("globex-c2-contact")
    return chains, skipped


def _first_us(output: TenantOutput, chain: Chain) -> int:
    """Earliest time of a chain's records, before they are written (from the collected records)."""
    marks = {s.id for s in chain.steps}
    times = [r.us for recs in output.windows.values() for r in recs if r.mark in marks]
    times += [row[0] for rows in output.lines.values() for row in rows if row[3] in marks]
    return min(times)


def _label(chain: Chain, output: TenantOutput) -> dict[str, Any]:
    """The ground-truth entry of one chain, with every step's records located in the written files."""
    clock = output.clock
    steps = []
    for step in chain.steps:
        located = sorted(output.located.get(step.id, []), key=lambda r: (r[3], r[0], r[1]))
        if not located:
            raise RuntimeError(f"chain step {step.id} produced no records")
        start, end = located[0][3], max(r[3] for r in located)
        files: dict[str, int] = {}
        for rel, _line, _off, _us in located:
            files[rel] = files.get(rel, 0) + 1
        steps.append(
            {
                "id": step.id,
                "name": step.name,
                "tactic": step.tactic,
                "technique": step.technique,
                "host": step.host,
                "users": step.users,
                "start": iso_z(start),
                "end": iso_z(end),
                "start_local": clock.rfc3339(start),
                "events": len(located),
                "files": files,
                "match": step.match,
                "rules": step.rules,
                "analytics": step.analytics,
                "description": step.description,
                "records": [
                    {"file": rel, "line": line, "offset": off, "time": iso_z(us)} for rel, line, off, us in located
                ],
            }
        )
    times = [us for step in chain.steps for _rel, _line, _off, us in output.located[step.id]]
    first, last = min(times), max(times)
    rules: list[str] = []
    analytics: list[str] = []
    techniques: list[str] = []
    for s in steps:
        rules += [r for r in s["rules"] if r not in rules]
        analytics += [a for a in s["analytics"] if a not in analytics]
        if s["technique"] not in techniques:
            techniques.append(s["technique"])
    return {
        "id": chain.id,
        "tenant": chain.tenant,
        "name": chain.name,
        "description": chain.description,
        "techniques": techniques,
        "first_event": iso_z(first),
        "last_event": iso_z(last),
        "first_event_local": clock.rfc3339(first),
        "hosts": chain.hosts,
        "users": chain.users,
        "external": {"ips": chain.external_ips, "domains": chain.external_domains},
        "detect_by": chain.detect_by,
        "rules": rules,
        "analytics": analytics,
        "related": chain.related,
        "steps": steps,
    }


def telemetry_paths(out: Path, tenant: str) -> list[Path]:
    """A generated tenant's telemetry folders, to ingest (everything under ``out/<tenant>`` but ``assets.csv``)."""
    base = Path(out) / tenant
    return sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []


def assets_csv(world: TenantWorld) -> str:
    """The tenant's asset inventory as CSV (hostname, ip, owner, criticality, asset_class, has_edr, tags)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["hostname", "ip", "owner", "criticality", "asset_class", "has_edr", "tags"])
    for h in world.hosts:
        if not h.inventoried:
            continue
        writer.writerow(
            [h.name, h.ip, h.owner, h.criticality, h.asset_class, "true" if h.has_edr else "false", ";".join(h.tags)]
        )
    return buf.getvalue()


__all__ = ["DEFAULT_START", "GeneratorConfig", "Manifest", "assets_csv", "generate", "telemetry_paths"]
