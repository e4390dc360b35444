"""From rule files to the engine's rule form: parse with pySigma, lower to tests and expressions.

pySigma does the parsing, the modifiers (``contains``, ``windash``, ``base64offset``,
``cidr``, ``re`` ...) and the processing pipelines; this module turns each parsed rule into
one or more :class:`RuleVariant` (the base rule, plus for process-creation and registry
rules the variant pySigma's ``windows_audit_pipeline`` derives for Security-log events)
over a shared table of :class:`~openmdr.detect.ir.Test`.  A rule that cannot be parsed or
uses something the engine cannot evaluate becomes a :class:`RuleProblem` with the reason.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from sigma.collection import SigmaCollection
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.correlations import (
    CorrelationConditionAND,
    CorrelationConditionNOT,
    CorrelationConditionOR,
    SigmaCorrelationCondition,
    SigmaCorrelationRule,
    SigmaExtendedCorrelationCondition,
    SigmaRuleReference,
)
from sigma.exceptions import SigmaError, SigmaRuleLocation
from sigma.filters import SigmaFilter
from sigma.modifiers import SigmaWideModifier, modifier_mapping
from sigma.pipelines.windows import windows_audit_pipeline
from sigma.rule import SigmaRule
from sigma.types import (
    Placeholder,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SigmaTimestampPart,
    SpecialChars,
)

from openmdr.detect import ir
from openmdr.detect.ir import Expr, Test
from openmdr.detect.logsource import AUDIT_CATEGORIES, Logsource
from openmdr.detect.rules import RuleLibrary, RuleProblem
from openmdr.detect.text import WILD_MULTI, WILD_ONE, Part, Parts, contains_parts, normalize_parts

try:  # the C loader is several times faster; fall back to the pure-Python one
    _YamlLoader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on the PyYAML build
    _YamlLoader = yaml.SafeLoader

# The Sigma specification names UTF-16LE ``utf16le`` (``wide`` is its alias); pySigma 1.x
# only knows ``wide``.  Register the spec name so rules using it parse.
modifier_mapping.setdefault("utf16le", SigmaWideModifier)

_ATTACK_TECHNIQUE = re.compile(r"^attack\.t(\d{4})(?:\.(\d{3}))?$", re.IGNORECASE)
#: ATT&CK tactic tags as Sigma writes them (``attack.<tactic>``).
ATTACK_TACTICS = frozenset(
    {
        "reconnaissance", "resource_development", "initial_access", "execution", "persistence",
        "privilege_escalation", "defense_evasion", "credential_access", "discovery",
        "lateral_movement", "collection", "command_and_control", "exfiltration", "impact",
    }
)  # fmt: skip

_FLAG_LETTERS = {
    SigmaRegularExpressionFlag.IGNORECASE: "i",
    SigmaRegularExpressionFlag.MULTILINE: "m",
    SigmaRegularExpressionFlag.DOTALL: "s",
}


class Unsupported(Exception):
    """A rule uses something the engine cannot evaluate; the message says what."""


@dataclass(slots=True)
class RuleMeta:
    """What an alert needs to know about a rule (and what the rule report lists)."""

    id: str
    title: str
    level: str
    status: str | None
    author: str | None
    description: str | None
    references: list[str]
    tags: list[str]
    falsepositives: list[str]
    path: str
    logsource: Logsource
    name: str | None = None
    attack: list[str] = field(default_factory=list)
    tactics: list[str] = field(default_factory=list)
    kind: str = "detection"  #: ``detection`` or ``correlation``
    notes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class RuleVariant:
    """One evaluable form of a detection rule: its log source, condition and named detections."""

    meta: int
    logsource: Logsource
    exclude_services: frozenset[str]
    expr: Expr
    detections: tuple[tuple[str, Expr], ...]
    variant: str = ""
    generate: bool = True


@dataclass(slots=True)
class CorrelationSpec:
    """A correlation rule resolved against the library (see :mod:`openmdr.detect.correlation`)."""

    meta: int
    type: str
    rules: list[int]  #: meta indexes of the referenced rules (detections or correlations)
    group_by: list[str]
    timespan: float
    conditions: list[tuple[str, float]]  #: (op, threshold); several are AND-linked
    value_field: str | None
    percentile: float | None
    aliases: dict[str, dict[int, str]]  #: alias -> {referenced meta index: field}
    extended: Expr | None  #: temporal boolean condition over rule slots (test i = rules[i])
    generate: bool


@dataclass(slots=True)
class LoweredLibrary:
    """Everything the compiler learned from a library, before groups and scanners are built."""

    metas: list[RuleMeta]
    variants: list[RuleVariant]
    tests: list[Test]
    correlations: list[CorrelationSpec]
    problems: list[RuleProblem]
    rule_files: int
    documents: int


def _enum_name(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "name", value)).lower()


def attack_ids(tags: Iterable[str]) -> tuple[list[str], list[str]]:
    """ATT&CK technique ids (``T1059.001``) and tactic names from Sigma tags."""
    techniques: list[str] = []
    tactics: list[str] = []
    for tag in tags:
        m = _ATTACK_TECHNIQUE.match(tag)
        if m:
            tid = "T" + m.group(1) + ("." + m.group(2) if m.group(2) else "")
            if tid not in techniques:
                techniques.append(tid)
            continue
        low = tag.lower()
        if low.startswith("attack."):
            name = low[7:].replace("-", "_")
            if name in ATTACK_TACTICS and name not in tactics:
                tactics.append(name)
    return techniques, tactics


def _meta_from_rule(rule: SigmaRule | SigmaCorrelationRule, path: str, ordinal: int) -> RuleMeta:
    tags = [str(t) for t in (rule.tags or [])]
    techniques, tactics = attack_ids(tags)
    if isinstance(rule, SigmaRule):
        ls = rule.logsource
        logsource: Logsource = (
            ls.product.lower() if ls.product else None,
            ls.service.lower() if ls.service else None,
            ls.category.lower() if ls.category else None,
        )
        kind = "detection"
    else:
        logsource = (None, None, None)
        kind = "correlation"
    rule_id = str(rule.id) if rule.id else (rule.name or f"{path}#{ordinal}")
    return RuleMeta(
        id=rule_id,
        title=rule.title or rule_id,
        level=_enum_name(rule.level) or "medium",
        status=_enum_name(rule.status),
        author=rule.author,
        description=rule.description,
        references=[str(r) for r in (rule.references or [])],
        tags=tags,
        falsepositives=[str(f) for f in (rule.falsepositives or [])],
        path=path,
        logsource=logsource,
        name=rule.name,
        attack=techniques,
        tactics=tactics,
        kind=kind,
    )


class Lowerer:
    """Turns pySigma condition trees into engine expressions over a shared test table."""

    def __init__(self, placeholders: Mapping[str, Sequence[str]] | None = None) -> None:
        self.tests: list[Test] = []
        self._index: dict[Test, int] = {}
        self.placeholders = {k: list(v) for k, v in (placeholders or {}).items()}

    def test(self, t: Test) -> Expr:
        """Expression for test ``t`` (added to the table once)."""
        i = self._index.get(t)
        if i is None:
            i = len(self.tests)
            self.tests.append(t)
            self._index[t] = i
        return ir.atom(i)

    def condition(self, node: Any) -> Expr:
        """Lower a postprocessed pySigma condition tree."""
        if node is None:
            return ir.FALSE
        if isinstance(node, ConditionAND):
            return ir.make_and([self.condition(a) for a in node.args])
        if isinstance(node, ConditionOR):
            return ir.make_or([self.condition(a) for a in node.args])
        if isinstance(node, ConditionNOT):
            return ir.make_not(self.condition(node.args[0]))
        if isinstance(node, ConditionFieldEqualsValueExpression):
            return self.value(node.field, node.value)
        if isinstance(node, ConditionValueExpression):
            return self.value(None, node.value)
        raise Unsupported(f"condition element {type(node).__name__} is not supported")

    def _string_variants(self, value: SigmaString) -> list[Parts]:
        """Parts of a Sigma string; placeholders expand to every configured value."""
        plain: list[Part] = []
        for p in value.s:
            if isinstance(p, str):
                plain.append(p)
            elif p is SpecialChars.WILDCARD_MULTI:
                plain.append(WILD_MULTI)
            elif p is SpecialChars.WILDCARD_SINGLE:
                plain.append(WILD_ONE)
            else:
                break
        else:
            return [normalize_parts(plain)]
        chunks: list[list[list[Part]]] = []
        for p in value.s:
            if isinstance(p, str):
                chunks.append([[p]])
            elif p is SpecialChars.WILDCARD_MULTI:
                chunks.append([[WILD_MULTI]])
            elif p is SpecialChars.WILDCARD_SINGLE:
                chunks.append([[WILD_ONE]])
            elif isinstance(p, Placeholder):
                values = self.placeholders.get(p.name)
                if not values:
                    raise Unsupported(f"placeholder %{p.name}% has no values (|expand needs a configured value list)")
                chunks.append(_ph(values))
            else:  # pragma: no cover - pySigma has no other part types
                raise Unsupported(f"string part {p!r} is not supported")
        return [normalize_parts(itertools.chain.from_iterable(combo)) for combo in itertools.product(*chunks)]

    def value(self, fieldname: str | None, value: Any) -> Expr:
        """Lower one ``field = value`` (or keyword) comparison."""
        if isinstance(value, SigmaExpansion):
            return ir.make_or([self.value(fieldname, v) for v in value.values])
        if isinstance(value, SigmaString):  # includes SigmaCasedString
            cased = isinstance(value, SigmaCasedString)
            out = []
            for parts in self._string_variants(value):
                if fieldname is None:
                    parts = contains_parts(parts)
                out.append(self.test(Test(ir.STR, fieldname, (parts, cased))))
            return ir.make_or(out)
        if isinstance(value, SigmaTimestampPart):
            if fieldname is None:
                raise Unsupported("timestamp part modifiers need a field")
            part = _enum_name(value.timestamp_part) or "minute"
            return self.test(Test(ir.TSPART, fieldname, (part, int(value.number))))
        if isinstance(value, SigmaNumber):
            text = str(value.number)
            parts: Parts = (text,) if fieldname is not None else contains_parts((text,))
            return self.test(Test(ir.STR, fieldname, (parts, False)))
        if isinstance(value, SigmaBool):
            text = "true" if value.boolean else "false"
            parts = (text,) if fieldname is not None else contains_parts((text,))
            return self.test(Test(ir.STR, fieldname, (parts, False)))
        if isinstance(value, SigmaNull):
            if fieldname is None:
                raise Unsupported("null value without a field")
            return self.test(Test(ir.NULL, fieldname, None))
        if isinstance(value, SigmaExists):
            if fieldname is None:
                raise Unsupported("exists modifier without a field")
            return self.test(Test(ir.EXISTS, fieldname, bool(value.exists)))
        if isinstance(value, SigmaRegularExpression):
            if value.regexp.contains_placeholder():
                raise Unsupported("placeholders inside regular expressions are not supported")
            flags = "".join(sorted(_FLAG_LETTERS[f] for f in value.flags))
            pattern = str(value.regexp)
            problem = ir.regex_is_valid(pattern, flags)
            if problem:
                raise Unsupported(f"regular expression {pattern!r} is invalid: {problem}")
            return self.test(Test(ir.RE, fieldname, (pattern, flags)))
        if isinstance(value, SigmaCIDRExpression):
            return self.test(Test(ir.CIDR, fieldname, str(value.network)))
        if isinstance(value, SigmaCompareExpression):
            op = _enum_name(value.op) or "eq"
            return self.test(Test(ir.CMP, fieldname, (op, float(value.number.number))))
        if isinstance(value, SigmaFieldReference):
            if fieldname is None:
                raise Unsupported("field reference without a field")
            return self.test(Test(ir.FIELDREF, fieldname, (value.field, value.starts_with, value.ends_with)))
        raise Unsupported(f"value type {type(value).__name__} is not supported")

    def rule(self, rule: SigmaRule) -> tuple[Expr, tuple[tuple[str, Expr], ...]]:
        """The rule's condition (its condition list OR-ed) and each named detection's expression."""
        expr = ir.make_or([self.condition(c.parsed) for c in rule.detection.parsed_condition])
        detections = []
        for name, det in rule.detection.detections.items():
            if name.startswith("_cond_"):
                continue  # pipeline-added conditions are not named by the rule author
            detections.append((name, self.condition(det.postprocess(rule.detection))))
        return expr, tuple(detections)


def _ph(values: Sequence[str]) -> list[list[Part]]:
    """Parts for each configured placeholder value (wildcards in values keep their meaning)."""
    out: list[list[Part]] = []
    for v in values:
        parts: list[Part] = []
        for p in SigmaString(v).s:
            if isinstance(p, str):
                parts.append(p)
            elif p is SpecialChars.WILDCARD_MULTI:
                parts.append(WILD_MULTI)
            elif p is SpecialChars.WILDCARD_SINGLE:
                parts.append(WILD_ONE)
        out.append(parts)
    return out


def _errors_text(errors: Sequence[Any]) -> str:
    return "; ".join(str(e) for e in errors)[:2000]


@dataclass(slots=True)
class _Parsed:
    rule: SigmaRule | SigmaCorrelationRule
    path: str
    ordinal: int


def parse_library(library: RuleLibrary) -> tuple[list[_Parsed], list[SigmaFilter], list[RuleProblem], int]:
    """Parse every rule document with pySigma; problems are collected, not raised."""
    parsed: list[_Parsed] = []
    filters: list[SigmaFilter] = []
    problems: list[RuleProblem] = list(library.problems)
    documents = 0
    for src in library.sources:
        try:
            docs = list(yaml.load_all(src.text, Loader=_YamlLoader))
        except yaml.YAMLError as exc:
            problems.append(RuleProblem(src.path, f"YAML error: {str(exc)[:500]}"))
            continue
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            problems.append(RuleProblem(src.path, f"unreadable YAML: {exc}"))
            continue
        docs = [d for d in docs if d is not None]
        documents += len(docs)
        if not docs:
            problems.append(RuleProblem(src.path, "no YAML document in file"))
            continue
        bad = [d for d in docs if not isinstance(d, dict)]
        if bad:
            problems.append(RuleProblem(src.path, f"YAML document is a {type(bad[0]).__name__}, not a mapping"))
            continue
        try:
            collection = SigmaCollection.from_dicts(
                docs,
                collect_errors=True,
                source=SigmaRuleLocation(src.path),
                collect_filters=True,
                resolve_references=False,
            )
        except (SigmaError, TypeError, ValueError, KeyError, AttributeError, RecursionError) as exc:
            problems.append(RuleProblem(src.path, f"not a Sigma rule: {exc}"))
            continue
        for err in collection.errors:
            if not any(err in r.errors for r in collection.rules):
                problems.append(RuleProblem(src.path, f"collection error: {err}"))
        for ordinal, rule in enumerate(collection.rules):
            if rule.errors:
                problems.append(
                    RuleProblem(
                        src.path,
                        _errors_text(rule.errors),
                        str(rule.id) if rule.id else None,
                        rule.title or None,
                    )
                )
                continue
            parsed.append(_Parsed(rule, src.path, ordinal))
        filters.extend(f for f in collection.filters if not f.errors)
        problems.extend(RuleProblem(src.path, _errors_text(f.errors)) for f in collection.filters if f.errors)
    return parsed, filters, problems, documents


def _condition_ops(cond: SigmaCorrelationCondition) -> list[tuple[str, float]]:
    return [(_enum_name(cond.op) or "gte", float(cond.count))]


def _extended_expr(node: Any, slots: dict[str, int]) -> Expr:
    if isinstance(node, SigmaRuleReference):
        if node.reference not in slots:
            raise Unsupported(f"extended condition names unknown rule {node.reference!r}")
        return ir.atom(slots[node.reference])
    if isinstance(node, CorrelationConditionAND):
        return ir.make_and([_extended_expr(a, slots) for a in node.args])
    if isinstance(node, CorrelationConditionOR):
        return ir.make_or([_extended_expr(a, slots) for a in node.args])
    if isinstance(node, CorrelationConditionNOT):
        return ir.make_not(_extended_expr(node.args[0], slots))
    raise Unsupported(f"correlation condition element {type(node).__name__} is not supported")


def lower_library(
    library: RuleLibrary,
    placeholders: Mapping[str, Sequence[str]] | None = None,
    audit_variants: bool = True,
) -> LoweredLibrary:
    """Parse and lower a whole library (the cold half of a compile)."""
    parsed, filters, problems, documents = parse_library(library)
    lowerer = Lowerer(placeholders)
    metas: list[RuleMeta] = []
    variants: list[RuleVariant] = []
    by_ref: dict[str, int] = {}
    correlations: list[tuple[int, SigmaCorrelationRule]] = []
    audit = windows_audit_pipeline() if audit_variants else None
    seen_ids: dict[str, str] = {}

    for item in parsed:
        rule = item.rule
        meta = _meta_from_rule(rule, item.path, item.ordinal)
        if meta.id in seen_ids:
            problems.append(
                RuleProblem(
                    item.path,
                    f"duplicate rule id (also in {seen_ids[meta.id]}); this copy is ignored",
                    meta.id,
                    meta.title,
                    "unsupported",
                )
            )
            continue
        if isinstance(rule, SigmaCorrelationRule):
            idx = len(metas)
            metas.append(meta)
            seen_ids[meta.id] = item.path
            correlations.append((idx, rule))
            by_ref[meta.id] = idx
            if rule.name:
                by_ref[rule.name] = idx
            continue
        for flt in filters:
            try:
                rule = flt.apply_on_rule(rule)
            except SigmaError as exc:
                meta.notes.append(f"filter {flt.title!r} not applied: {exc}")
        try:
            expr, detections = lowerer.rule(rule)
        except (Unsupported, SigmaError) as exc:
            problems.append(RuleProblem(item.path, str(exc), meta.id, meta.title, "unsupported"))
            continue
        except RecursionError:
            problems.append(RuleProblem(item.path, "condition nested too deeply", meta.id, meta.title, "unsupported"))
            continue
        idx = len(metas)
        metas.append(meta)
        seen_ids[meta.id] = item.path
        by_ref[meta.id] = idx
        if rule.name:
            by_ref[rule.name] = idx
        product, _service, category = meta.logsource
        audit_applies = audit is not None and product == "windows" and category in AUDIT_CATEGORIES
        exclude = frozenset({"security"}) if audit_applies else frozenset()
        variants.append(RuleVariant(idx, meta.logsource, exclude, expr, detections))
        if audit_applies:
            variant = _audit_variant(rule, idx, lowerer, audit)  # type: ignore[arg-type]
            if isinstance(variant, str):
                meta.notes.append(f"not applicable to the Windows Security log: {variant}")
            else:
                variants.append(variant)

    specs: list[CorrelationSpec] = []
    referenced_silently: set[int] = set()
    for idx, corr in correlations:
        meta = metas[idx]
        try:
            spec = _correlation_spec(idx, corr, by_ref)
        except (Unsupported, SigmaError) as exc:
            problems.append(RuleProblem(meta.path, str(exc), meta.id, meta.title, "unsupported"))
            meta.notes.append(f"unsupported: {exc}")
            continue
        specs.append(spec)
        if not spec.generate:
            referenced_silently.update(spec.rules)
    for v in variants:
        if v.meta in referenced_silently:
            v.generate = False
    return LoweredLibrary(metas, variants, lowerer.tests, specs, problems, len(library.sources), documents)


def _audit_variant(rule: SigmaRule, idx: int, lowerer: Lowerer, audit: Any) -> RuleVariant | str:
    """The Security-log form of a rule, as pySigma's windows-audit pipeline derives it.

    The pipeline is applied to ``rule`` itself (the base form is already lowered), which
    spares a deep copy per rule.
    """
    variant_rule = rule
    try:
        audit.apply(variant_rule)
        expr, detections = lowerer.rule(variant_rule)
    except (Unsupported, SigmaError) as exc:
        return str(exc)
    ls = variant_rule.logsource
    logsource: Logsource = (
        ls.product.lower() if ls.product else None,
        ls.service.lower() if ls.service else None,
        ls.category.lower() if ls.category else None,
    )
    return RuleVariant(idx, logsource, frozenset(), expr, detections, "windows-audit")


def _correlation_spec(idx: int, corr: SigmaCorrelationRule, by_ref: Mapping[str, int]) -> CorrelationSpec:
    refs = [r.reference for r in (corr.rules or [])]
    if isinstance(corr.condition, SigmaExtendedCorrelationCondition) and not refs:
        refs = corr.condition.get_referenced_rules()
    rules: list[int] = []
    for ref in refs:
        if ref not in by_ref:
            raise Unsupported(f"correlation refers to rule {ref!r}, which is not in the library (or unsupported)")
        rules.append(by_ref[ref])
    ctype = _enum_name(corr.type) or "event_count"
    if ctype not in {
        "event_count", "value_count", "temporal", "temporal_ordered",
        "value_sum", "value_avg", "value_percentile", "value_median",
    }:  # fmt: skip
        raise Unsupported(f"correlation type {ctype!r} is not supported")
    extended: Expr | None = None
    conditions: list[tuple[str, float]] = []
    value_field: str | None = None
    percentile: float | None = None
    if isinstance(corr.condition, SigmaExtendedCorrelationCondition):
        slots = {ref: i for i, ref in enumerate(refs)}
        extended = _extended_expr(corr.condition.parsed, slots)
    else:
        cond = corr.condition
        conditions = _condition_ops(cond)
        if isinstance(cond.fieldref, list):
            if len(cond.fieldref) != 1:
                raise Unsupported("correlation conditions over several fields are not supported")
            value_field = cond.fieldref[0]
        else:
            value_field = cond.fieldref
        if ctype == "value_median":
            percentile = 50.0
        elif ctype == "value_percentile":
            if cond.percentile is None:
                raise Unsupported("value_percentile correlation without 'percentile'")
            if not 0 <= cond.percentile <= 100:
                raise Unsupported("percentile must be between 0 and 100")
            percentile = float(cond.percentile)
    if ctype in ("temporal", "temporal_ordered") and not conditions and extended is None:
        conditions = [("gte", float(len(rules)))]
    aliases: dict[str, dict[int, str]] = {}
    for alias in corr.aliases:
        mapping: dict[int, str] = {}
        for ref, fieldname in alias.mapping.items():
            if ref.reference not in by_ref:
                raise Unsupported(f"alias {alias.alias!r} names unknown rule {ref.reference!r}")
            mapping[by_ref[ref.reference]] = fieldname
        aliases[alias.alias] = mapping
    return CorrelationSpec(
        meta=idx,
        type=ctype,
        rules=rules,
        group_by=list(corr.group_by or []),
        timespan=float(corr.timespan.seconds),
        conditions=conditions,
        value_field=value_field,
        percentile=percentile,
        aliases=aliases,
        extended=extended,
        generate=bool(corr.generate),
    )
