"""Indicator values: normalization, type inference, TLP spellings, ids and ageing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from openmdr.models.indicator import (
    Indicator,
    IndicatorError,
    aged_confidence,
    indicator_id,
    infer_type,
    normalize_tlp,
    normalize_value,
)
from tests.intel.helpers import NOW


@pytest.mark.parametrize(
    ("kind", "raw", "normal"),
    [
        ("ip", " 2001:0DB8:0000::0001 ", "2001:db8::1"),
        ("cidr", "198.51.100.77/24", "198.51.100.0/24"),
        ("domain", "*.Evil.Example.", "evil.example"),
        ("md5", "44D88612FEA8A8F36DE82E1278ABB02F", "44d88612fea8a8f36de82e1278abb02f"),
        ("email", "CEO@Phish.Example", "ceo@phish.example"),
        ("url", " http://x.example/A?b=C ", "http://x.example/A?b=C"),
    ],
)
def test_values_are_normalized(kind: str, raw: str, normal: str) -> None:
    assert normalize_value(kind, raw) == normal


@pytest.mark.parametrize(
    ("kind", "raw"),
    [("ip", "1.2.3.256"), ("cidr", "1.2.3.4/33"), ("domain", "localhost"), ("domain", "-bad-.example"),
     ("sha1", "abc"), ("sha256", "z" * 64), ("email", "no-at.example"), ("url", "evil.example/x"), ("ja3", ""),
     ("unknown", "x")],
)  # fmt: skip
def test_invalid_values_are_refused(kind: str, raw: str) -> None:
    with pytest.raises(IndicatorError):
        normalize_value(kind, raw)


def test_type_inference_and_tlp_spellings() -> None:
    values = ("1.2.3.4", "10.0.0.0/8", "a" * 40, "http://x.example/", "a@b.example", "x.example")
    assert [infer_type(v) for v in values] == ["ip", "cidr", "sha1", "url", "email", "domain"]
    with pytest.raises(IndicatorError):
        infer_type("not a value")
    assert [normalize_tlp(t) for t in ("TLP:WHITE", "tlp:amber+strict", "Amber Strict", "RED")] == [
        "clear", "amber+strict", "amber+strict", "red"
    ]  # fmt: skip
    with pytest.raises(IndicatorError):
        normalize_tlp("purple")


def test_ids_depend_on_scope_type_and_normalized_value() -> None:
    assert Indicator("domain", "Evil.Example").id == Indicator("domain", "evil.example.").id
    assert Indicator("domain", "evil.example").id != Indicator("domain", "evil.example", tenant="acme").id
    assert indicator_id(None, "ip", "1.2.3.4") != indicator_id(None, "cidr", "1.2.3.4/32")


def test_confidence_halves_per_half_life_and_hashes_do_not_age() -> None:
    assert aged_confidence(80, "ip", NOW, NOW + timedelta(days=60)) == 20
    assert aged_confidence(80, "domain", NOW, NOW + timedelta(days=90)) == 40
    assert aged_confidence(80, "sha256", NOW, NOW + timedelta(days=900)) == 80
    assert aged_confidence(80, "ip", None, NOW) == 80
