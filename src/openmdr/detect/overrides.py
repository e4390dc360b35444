"""Per-tenant overrides applied at evaluation time: no copy of any rule per tenant.

One global library serves every tenant; a tenant's :class:`TenantOverrides` can disable
rules, change a rule's severity, and add *exceptions*: Sigma filters (the ``filter:``
meta-rule format of the Sigma specification) whose condition must hold for an alert to
be kept, e.g. ``condition: not selection`` with ``selection: {User: svc_backup}``.
Exceptions are evaluated only on the events a rule already matched, with the same
per-row semantics as the rules themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from sigma.exceptions import SigmaError
from sigma.filters import SigmaFilter

from openmdr.detect import ir
from openmdr.detect.compiler import Lowerer, RuleMeta, Unsupported
from openmdr.detect.ir import Expr
from openmdr.detect.logsource import Logsource
from openmdr.models.alert import SEVERITIES


class OverrideError(ValueError):
    """An override definition that cannot be used; the message says why."""


@dataclass(slots=True)
class RuleException:
    """A Sigma filter scoped to rules: alerts survive only where its condition is true."""

    title: str
    rules: frozenset[str] | None  #: rule ids or names; ``None`` = every rule of the log source
    logsource: Logsource
    expr: Expr
    tests: tuple[ir.Test, ...]
    _preds: list[Callable[[Mapping[str, Any]], bool]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._preds = [ir.row_predicate(t) for t in self.tests]

    def applies_to(self, meta: RuleMeta) -> bool:
        """Whether this exception concerns the rule described by ``meta``."""
        if self.rules is not None:
            return meta.id in self.rules or (meta.name is not None and meta.name in self.rules)
        for mine, theirs in zip(self.logsource, meta.logsource, strict=True):
            if mine is not None and mine != theirs:
                return False
        return True

    def keeps(self, fields: Mapping[str, Any]) -> bool:
        """True when the filter condition holds for an event's fields (the alert is kept)."""
        preds = self._preds
        return ir.eval_expr(self.expr, lambda i: preds[i](fields))

    @classmethod
    def from_filter(cls, document: Mapping[str, Any] | str) -> RuleException:
        """Build from a Sigma filter document (a mapping or its YAML text)."""
        data = yaml.safe_load(document) if isinstance(document, str) else dict(document)
        if not isinstance(data, dict) or "filter" not in data:
            raise OverrideError("an exception must be a Sigma filter document with a 'filter' section")
        data.setdefault("title", "tenant exception")
        any_source = not data.get("logsource")
        if any_source:  # pySigma refuses an empty log source; "none given" means every log source
            data["logsource"] = {"product": "any"}
        try:
            flt = SigmaFilter.from_dict(data)
        except (SigmaError, TypeError, ValueError, KeyError) as exc:
            raise OverrideError(f"invalid Sigma filter: {exc}") from exc
        lowerer = Lowerer()
        try:
            expr = ir.make_or([lowerer.condition(c.parsed) for c in flt.filter.parsed_condition])
        except (Unsupported, SigmaError) as exc:
            raise OverrideError(f"unsupported Sigma filter: {exc}") from exc
        refs = flt.filter.rules
        rules = None if isinstance(refs, str) else frozenset(r.reference for r in refs)
        ls = flt.logsource
        logsource: Logsource = (
            (None, None, None)
            if any_source
            else (
                ls.product.lower() if ls.product else None,
                ls.service.lower() if ls.service else None,
                ls.category.lower() if ls.category else None,
            )
        )
        return cls(flt.title, rules, logsource, expr, tuple(lowerer.tests))


@dataclass(slots=True)
class TenantOverrides:
    """What one tenant changes about the global rule library."""

    disabled: frozenset[str] = frozenset()  #: rule ids (or names) that never alert for the tenant
    enabled_only: frozenset[str] | None = None  #: when set, only these rules alert
    severity: Mapping[str, str] = field(default_factory=dict)  #: rule id -> severity
    exceptions: tuple[RuleException, ...] = ()

    def __post_init__(self) -> None:
        for rule_id, level in self.severity.items():
            if level not in SEVERITIES:
                raise OverrideError(f"severity {level!r} for rule {rule_id} is not one of {', '.join(SEVERITIES)}")

    def enabled(self, meta: RuleMeta) -> bool:
        """Whether the rule may alert for this tenant."""
        keys = {meta.id} | ({meta.name} if meta.name else set())
        if not self.disabled.isdisjoint(keys):
            return False
        return self.enabled_only is None or not self.enabled_only.isdisjoint(keys)

    def severity_for(self, meta: RuleMeta) -> str:
        """The severity alerts of this rule get for this tenant."""
        return self.severity.get(meta.id) or (self.severity.get(meta.name) if meta.name else None) or meta.level

    def exceptions_for(self, meta: RuleMeta) -> list[RuleException]:
        """The exceptions that concern this rule."""
        return [e for e in self.exceptions if e.applies_to(meta)]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TenantOverrides:
        """Build from plain data: ``disabled``, ``enabled_only``, ``severity``, ``exceptions``."""
        unknown = set(data) - {"disabled", "enabled_only", "severity", "exceptions"}
        if unknown:
            raise OverrideError(f"unknown override keys: {', '.join(sorted(unknown))}")
        enabled_only = data.get("enabled_only")
        return cls(
            disabled=frozenset(map(str, data.get("disabled") or ())),
            enabled_only=frozenset(map(str, enabled_only)) if enabled_only is not None else None,
            severity={str(k): str(v) for k, v in (data.get("severity") or {}).items()},
            exceptions=tuple(RuleException.from_filter(e) for e in (data.get("exceptions") or ())),
        )


def overrides_map(items: Iterable[tuple[str, TenantOverrides]]) -> dict[str, TenantOverrides]:
    """A tenant -> overrides mapping (later entries win)."""
    return dict(items)
