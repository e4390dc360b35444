"""Tenants and their assets as the stages see them (plain values, not storage rows)."""

from __future__ import annotations

from dataclasses import dataclass, field

#: Asset criticality levels, least to most critical.
CRITICALITY_LEVELS: tuple[str, ...] = ("low", "medium", "high", "critical")
#: Asset classes response policy distinguishes.
ASSET_CLASSES: tuple[str, ...] = ("workstation", "server", "domain_controller", "network", "cloud", "other")


@dataclass(slots=True, frozen=True)
class TenantInfo:
    """A customer tenant: its name (the key everywhere), networks, domains and working time.

    ``networks`` are the CIDRs that count as internal for this tenant; ``domains`` the
    e-mail/AD domains its users belong to.  ``working_hours`` is ``(start_hour,
    end_hour)`` in the tenant's ``timezone`` on ``working_days`` (0 = Monday).
    """

    name: str
    display_name: str = ""
    timezone: str = "UTC"
    working_hours: tuple[int, int] = (8, 18)
    working_days: tuple[int, ...] = (0, 1, 2, 3, 4)
    networks: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    retention_days: int | None = None


@dataclass(slots=True, frozen=True)
class AssetInfo:
    """One entry of a tenant's asset inventory."""

    hostname: str
    ips: tuple[str, ...] = ()
    owner: str | None = None
    criticality: str = "medium"
    asset_class: str = "workstation"
    has_edr: bool = False
    tags: tuple[str, ...] = field(default=())
