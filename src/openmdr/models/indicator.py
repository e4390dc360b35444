"""The indicator model: one thing to look for (an address, a domain, a hash ...), with its provenance.

Indicators come from feeds (STIX, MISP, CSV, TAXII), from analysts and from our own resolved
cases.  Their values are normalized here (:func:`normalize_value`) once, so the matcher and
the store compare like with like.  ``tenant`` is ``None`` for a provider-wide indicator (every
tenant's detection uses it) or the one tenant it belongs to.  TLP says how far it may travel
(:data:`TLP_LEVELS`); confidence (0-100, STIX scale) fades with age (:func:`aged_confidence`).
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: Indicator types the store and the matcher know.
INDICATOR_TYPES: tuple[str, ...] = (
    "ip", "cidr", "domain", "url", "md5", "sha1", "sha256", "email", "user_agent", "ja3",
)  # fmt: skip

#: Traffic Light Protocol 2.0 levels, from least to most restricted.
TLP_LEVELS: tuple[str, ...] = ("clear", "green", "amber", "amber+strict", "red")

#: TLP levels that stay in the tenant they come from (never shared provider-wide, never exported).
TENANT_ONLY_TLP: frozenset[str] = frozenset({"amber+strict", "red"})

#: Days after which an indicator's confidence has halved, by type (``None``: it does not fade).
#: Addresses are re-assigned quickly, domains less so; a file hash stays what it is.
HALF_LIFE_DAYS: dict[str, float | None] = {
    "ip": 30.0, "cidr": 60.0, "domain": 90.0, "url": 60.0, "md5": None, "sha1": None, "sha256": None,
    "email": 180.0, "user_agent": 120.0, "ja3": 120.0,
}  # fmt: skip

_NAMESPACE = uuid.UUID("6f1d3c52-8f0e-4d47-9b7a-2c1e5a9d0b11")
_HEX = {"md5": 32, "sha1": 40, "sha256": 64, "ja3": 32}
_HEX_RE = re.compile(r"^[0-9a-f]+$")
_LABEL_RE = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_URL_RE = re.compile(r"^[a-z][a-z0-9+.-]*://[^\s/?#]+", re.IGNORECASE)


class IndicatorError(ValueError):
    """An indicator value that is not valid for its type."""


def tlp_rank(tlp: str) -> int:
    """Position of ``tlp`` in :data:`TLP_LEVELS` (``white`` is TLP 1.0 for ``clear``)."""
    tlp = normalize_tlp(tlp)
    return TLP_LEVELS.index(tlp)


def normalize_tlp(tlp: str) -> str:
    """Canonical TLP 2.0 name from ``TLP:AMBER``, ``white``, ``amber strict`` and similar spellings."""
    text = tlp.strip().lower().removeprefix("tlp:").replace(" ", "+").replace("_", "+")
    if text == "white":
        text = "clear"
    if text not in TLP_LEVELS:
        raise IndicatorError(f"unknown TLP level {tlp!r} (expected one of {', '.join(TLP_LEVELS)})")
    return text


def url_host(url: str) -> str | None:
    """The host part of a URL, lower-cased, without user info or port."""
    m = re.match(r"^[a-z][a-z0-9+.-]*://(?:[^@/?#]*@)?(\[[^\]]+\]|[^:/?#]+)", url.strip(), re.IGNORECASE)
    return m.group(1).strip("[]").lower() if m else None


def normalize_value(kind: str, value: str) -> str:
    """The canonical form of an indicator value of type ``kind``, or :class:`IndicatorError`.

    Addresses in their compressed form, a CIDR as its network, domains lower-case without the
    trailing dot, hashes lower-case hex of the right length, e-mail lower-case; URLs and
    user-agents are kept as given (stripped), since they match exactly.
    """
    if kind not in INDICATOR_TYPES:
        raise IndicatorError(f"unknown indicator type {kind!r}")
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise IndicatorError(f"empty {kind} value")
    if kind == "ip":
        try:
            return ipaddress.ip_address(text).compressed
        except ValueError:
            raise IndicatorError(f"not an IP address: {text!r}") from None
    if kind == "cidr":
        try:
            return ipaddress.ip_network(text, strict=False).compressed
        except ValueError:
            raise IndicatorError(f"not a CIDR network: {text!r}") from None
    if kind == "domain":
        name = text.lower().rstrip(".").removeprefix("*.")
        labels = name.split(".")
        if len(name) > 253 or len(labels) < 2 or not all(_LABEL_RE.match(label) for label in labels):
            raise IndicatorError(f"not a domain name: {text!r}")
        return name
    if kind in _HEX:
        digest = text.lower()
        if len(digest) != _HEX[kind] or not _HEX_RE.match(digest):
            raise IndicatorError(f"not a {kind} value ({_HEX[kind]} hex digits): {text!r}")
        return digest
    if kind == "email":
        address = text.lower()
        if not _EMAIL_RE.match(address):
            raise IndicatorError(f"not an e-mail address: {text!r}")
        return address
    if kind == "url":
        if not _URL_RE.match(text):
            raise IndicatorError(f"not a URL with scheme and host: {text!r}")
        return text
    return text  # user_agent


def infer_type(value: str) -> str:
    """Guess the indicator type of a bare value (for ``openmdr intel add VALUE`` and CSV without types)."""
    text = value.strip()
    for kind in ("ip", "cidr"):
        try:
            normalize_value(kind, text)
        except IndicatorError:
            continue
        return kind
    lowered = text.lower()
    if _HEX_RE.match(lowered):
        for kind, size in (("md5", 32), ("sha1", 40), ("sha256", 64)):
            if len(lowered) == size:
                return kind
    if _URL_RE.match(text):
        return "url"
    if _EMAIL_RE.match(lowered):
        return "email"
    try:
        normalize_value("domain", text)
    except IndicatorError:
        raise IndicatorError(f"cannot tell the indicator type of {text!r}: give it explicitly") from None
    return "domain"


def indicator_id(tenant: str | None, kind: str, value: str) -> str:
    """Stable id of an indicator: the same scope, type and normalized value always get the same id."""
    return str(uuid.uuid5(_NAMESPACE, f"{tenant or '*'}\x1f{kind}\x1f{value}"))


def aged_confidence(confidence: int, kind: str, last_seen: datetime | None, now: datetime) -> int:
    """Confidence after ageing: halves every :data:`HALF_LIFE_DAYS` days since the indicator was last seen."""
    half_life = HALF_LIFE_DAYS.get(kind)
    if half_life is None or last_seen is None:
        return confidence
    age_days = max(0.0, (now - last_seen).total_seconds() / 86400.0)
    return round(confidence * 0.5 ** (age_days / half_life))


@dataclass(slots=True)
class Indicator:
    """One indicator with its type, normalized value, scope, provenance and lifetime.

    ``source`` names the feed, analyst or case it came from; ``origin`` links to where it was
    learned (``{"type": "case", "case_id": ..., "proposal_id": ...}``) without naming the tenant.
    """

    type: str
    value: str
    tenant: str | None = None
    source: str = "manual"
    confidence: int = 50
    tlp: str = "amber"
    tags: list[str] = field(default_factory=list)
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    expires_at: datetime | None = None
    description: str | None = None
    origin: dict[str, Any] | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    id: str = ""

    def __post_init__(self) -> None:
        self.value = normalize_value(self.type, self.value)
        self.tlp = normalize_tlp(self.tlp)
        self.confidence = int(max(0, min(100, int(self.confidence))))
        if not self.id:
            self.id = indicator_id(self.tenant, self.type, self.value)

    def is_expired(self, now: datetime) -> bool:
        """True once ``expires_at`` has passed."""
        return self.expires_at is not None and self.expires_at <= now

    def effective_confidence(self, now: datetime) -> int:
        """Confidence after ageing (:func:`aged_confidence`)."""
        return aged_confidence(self.confidence, self.type, self.last_seen or self.first_seen, now)

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-ready form (times ISO 8601)."""
        out: dict[str, Any] = {}
        for name in self.__slots__:  # type: ignore[attr-defined]
            value = getattr(self, name)
            out[name] = value.isoformat() if isinstance(value, datetime) else value
        return out
