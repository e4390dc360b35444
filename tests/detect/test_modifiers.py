"""One test (or a few) per Sigma modifier and condition form, edge cases included.

Every case runs through both evaluation paths (column scanner and per-row meaning),
which must agree (see :func:`tests.detect.helpers.matches`).
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.detect.helpers import engine_for, event, fires, matches, rule_text

CASES: list[tuple[str, dict[str, Any], dict[str, Any], bool]] = [
    # equality: case-insensitive by default, exact text, numbers as text
    ("eq-ci", {"sel": {"Image": "C:\\Windows\\cmd.exe"}, "condition": "sel"}, {"Image": "c:\\WINDOWS\\CMD.EXE"}, True),
    ("eq-not-substring", {"sel": {"Image": "cmd.exe"}, "condition": "sel"}, {"Image": "C:\\cmd.exe"}, False),
    ("eq-int-vs-text", {"sel": {"EventID": 4688}, "condition": "sel"}, {"EventID": "4688"}, True),
    ("eq-text-vs-int", {"sel": {"EventID": "4688"}, "condition": "sel"}, {"EventID": 4688}, True),
    ("eq-int-mismatch", {"sel": {"EventID": 4688}, "condition": "sel"}, {"EventID": 46880}, False),
    ("eq-float-integral", {"sel": {"Count": 4}, "condition": "sel"}, {"Count": 4.0}, True),
    ("eq-bool", {"sel": {"Enabled": True}, "condition": "sel"}, {"Enabled": True}, True),
    ("eq-empty-string", {"sel": {"Name": ""}, "condition": "sel"}, {"Name": ""}, True),
    ("eq-empty-vs-value", {"sel": {"Name": ""}, "condition": "sel"}, {"Name": "x"}, False),
    ("non-ascii-fold-ascii-only", {"sel": {"U": "É"}, "condition": "sel"}, {"U": "é"}, False),
    ("non-ascii-exact", {"sel": {"U": "Ümlaut"}, "condition": "sel"}, {"U": "ümlaut"}, False),
    ("non-ascii-same", {"sel": {"U": "Ümlaut"}, "condition": "sel"}, {"U": "ÜMLAUT"}, True),
    # cased
    ("cased-hit", {"sel": {"C|cased": "AbC"}, "condition": "sel"}, {"C": "AbC"}, True),
    ("cased-miss", {"sel": {"C|cased": "AbC"}, "condition": "sel"}, {"C": "abc"}, False),
    ("cased-contains", {"sel": {"C|contains|cased": "Bc"}, "condition": "sel"}, {"C": "abcd"}, False),
    # wildcards and escapes
    ("wild-star", {"sel": {"C": "a*c"}, "condition": "sel"}, {"C": "abbbc"}, True),
    ("wild-star-anchored", {"sel": {"C": "a*c"}, "condition": "sel"}, {"C": "abbbcd"}, False),
    ("wild-qmark", {"sel": {"C": "a?c"}, "condition": "sel"}, {"C": "abc"}, True),
    ("wild-qmark-one-only", {"sel": {"C": "a?c"}, "condition": "sel"}, {"C": "abbc"}, False),
    ("wild-qmark-unicode", {"sel": {"C": "a?c"}, "condition": "sel"}, {"C": "aéc"}, True),
    ("escaped-star", {"sel": {"C": "a\\*c"}, "condition": "sel"}, {"C": "a*c"}, True),
    ("escaped-star-literal", {"sel": {"C": "a\\*c"}, "condition": "sel"}, {"C": "abc"}, False),
    ("escaped-qmark", {"sel": {"C": "a\\?c"}, "condition": "sel"}, {"C": "abc"}, False),
    ("backslash-plain", {"sel": {"C": "C:\\Temp\\x"}, "condition": "sel"}, {"C": "c:\\temp\\X"}, True),
    ("double-backslash-escape", {"sel": {"C": "a\\\\*"}, "condition": "sel"}, {"C": "a\\zzz"}, True),
    ("only-star-matches-present", {"sel": {"C": "*"}, "condition": "sel"}, {"C": "anything"}, True),
    ("only-star-absent", {"sel": {"C": "*"}, "condition": "sel"}, {"D": "anything"}, False),
    # contains / startswith / endswith / all
    ("contains", {"sel": {"C|contains": "wHoAmI"}, "condition": "sel"}, {"C": "cmd /c whoami /all"}, True),
    ("startswith", {"sel": {"C|startswith": "cmd"}, "condition": "sel"}, {"C": "CMD /c"}, True),
    ("startswith-miss", {"sel": {"C|startswith": "cmd"}, "condition": "sel"}, {"C": "x cmd"}, False),
    ("endswith", {"sel": {"C|endswith": ".EXE"}, "condition": "sel"}, {"C": "a.exe"}, True),
    ("endswith-miss", {"sel": {"C|endswith": ".exe"}, "condition": "sel"}, {"C": "a.exe "}, False),
    ("contains-wild-inside", {"sel": {"C|contains": "a*b"}, "condition": "sel"}, {"C": "xxaYYbzz"}, True),
    ("list-or", {"sel": {"C|endswith": ["\\a.exe", "\\b.exe"]}, "condition": "sel"}, {"C": "C:\\b.exe"}, True),
    ("contains-all", {"sel": {"C|contains|all": ["-a", "-b"]}, "condition": "sel"}, {"C": "x -b -a"}, True),
    ("contains-all-miss", {"sel": {"C|contains|all": ["-a", "-b"]}, "condition": "sel"}, {"C": "x -a"}, False),
    ("and-of-fields", {"sel": {"A": "1", "B": "2"}, "condition": "sel"}, {"A": "1", "B": "3"}, False),
    ("list-of-maps-or", {"sel": [{"A": "1"}, {"B": "2"}], "condition": "sel"}, {"A": "0", "B": "2"}, True),
    # regular expressions and flags
    ("re", {"sel": {"C|re": "^a.c$"}, "condition": "sel"}, {"C": "abc"}, True),
    ("re-case-sensitive", {"sel": {"C|re": "^abc$"}, "condition": "sel"}, {"C": "ABC"}, False),
    ("re-i", {"sel": {"C|re|i": "^abc$"}, "condition": "sel"}, {"C": "ABC"}, True),
    ("re-inline-i", {"sel": {"C|re": "(?i)^abc$"}, "condition": "sel"}, {"C": "ABC"}, True),
    ("re-m", {"sel": {"C|re|m": "^second$"}, "condition": "sel"}, {"C": "first\nsecond"}, True),
    ("re-no-m", {"sel": {"C|re": "^second$"}, "condition": "sel"}, {"C": "first\nsecond"}, False),
    ("re-s", {"sel": {"C|re|s": "a.b"}, "condition": "sel"}, {"C": "a\nb"}, True),
    ("re-no-s", {"sel": {"C|re": "a.b"}, "condition": "sel"}, {"C": "a\nb"}, False),
    ("re-search-not-anchored", {"sel": {"C|re": "who.mi"}, "condition": "sel"}, {"C": "cmd whoami x"}, True),
    (
        "re-literal-prefilter",
        {"sel": {"C|re": "invoke-(mimikatz|expression)"}, "condition": "sel"},
        {"C": "x invoke-expression y"},
        True,
    ),
    (
        "re-literal-prefilter-miss",
        {"sel": {"C|re": "invoke-(mimikatz|expression)"}, "condition": "sel"},
        {"C": "x INVOKE-expression y"},
        False,
    ),
    # windash
    ("windash-dash", {"sel": {"C|windash|contains": " -enc "}, "condition": "sel"}, {"C": "ps -enc x"}, True),
    ("windash-slash", {"sel": {"C|windash|contains": " -enc "}, "condition": "sel"}, {"C": "ps /enc x"}, True),
    ("windash-en-dash", {"sel": {"C|windash|contains": " -enc "}, "condition": "sel"}, {"C": "ps \u2013enc x"}, True),
    ("windash-em-dash", {"sel": {"C|windash|contains": " -enc "}, "condition": "sel"}, {"C": "ps \u2014enc x"}, True),
    ("windash-bar", {"sel": {"C|windash|contains": " -enc "}, "condition": "sel"}, {"C": "ps \u2015enc x"}, True),
    ("windash-miss", {"sel": {"C|windash|contains": " -enc "}, "condition": "sel"}, {"C": "ps +enc x"}, False),
    # cidr
    ("cidr-v4", {"sel": {"Ip|cidr": "10.0.0.0/8"}, "condition": "sel"}, {"Ip": "10.20.30.40"}, True),
    ("cidr-v4-miss", {"sel": {"Ip|cidr": "10.0.0.0/8"}, "condition": "sel"}, {"Ip": "11.0.0.1"}, False),
    ("cidr-odd-prefix", {"sel": {"Ip|cidr": "192.168.0.0/23"}, "condition": "sel"}, {"Ip": "192.168.1.255"}, True),
    ("cidr-odd-prefix-miss", {"sel": {"Ip|cidr": "192.168.0.0/23"}, "condition": "sel"}, {"Ip": "192.168.2.0"}, False),
    ("cidr-v6", {"sel": {"Ip|cidr": "fe80::/10"}, "condition": "sel"}, {"Ip": "fe80::1"}, True),
    (
        "cidr-list",
        {"sel": {"Ip|cidr": ["10.0.0.0/8", "172.16.0.0/12"]}, "condition": "sel"},
        {"Ip": "172.20.1.1"},
        True,
    ),
    ("cidr-not-an-ip", {"sel": {"Ip|cidr": "10.0.0.0/8"}, "condition": "sel"}, {"Ip": "10.example"}, False),
    # base64 / base64offset / utf16
    ("base64", {"sel": {"C|base64": "whoami"}, "condition": "sel"}, {"C": base64.b64encode(b"whoami").decode()}, True),
    (
        "base64-contains",
        {"sel": {"C|base64|contains": "http://"}, "condition": "sel"},
        {"C": "x " + base64.b64encode(b"http://").decode() + " y"},
        True,
    ),
    *[
        (
            f"base64offset-{k}",
            {"sel": {"C|base64offset|contains": "Invoke-"}, "condition": "sel"},
            {"C": "-e " + base64.b64encode(b"ab"[:k] + b"Invoke-Mimikatz").decode()},
            True,
        )
        for k in range(3)
    ],
    (
        "base64offset-miss",
        {"sel": {"C|base64offset|contains": "Invoke-"}, "condition": "sel"},
        {"C": base64.b64encode(b"Nothing here at all").decode()},
        False,
    ),
    *[
        (
            f"utf16le-base64offset-{k}",
            {"sel": {"C|utf16le|base64offset|contains": "iex"}, "condition": "sel"},
            {"C": base64.b64encode(("x" * k + "iex(foo)").encode("utf-16-le")).decode()},
            True,
        )
        for k in range(3)
    ],
    (
        "wide-base64offset",
        {"sel": {"C|wide|base64offset|contains": "ping"}, "condition": "sel"},
        {"C": base64.b64encode("a ping b".encode("utf-16-le")).decode()},
        True,
    ),
    (
        "utf16be-base64",
        {"sel": {"C|utf16be|base64offset|contains": "calc"}, "condition": "sel"},
        {"C": base64.b64encode("calc.exe".encode("utf-16-be")).decode()},
        True,
    ),
    # exists / null / absent fields
    ("exists-true", {"sel": {"A|exists": True}, "condition": "sel"}, {"A": "x"}, True),
    ("exists-true-absent", {"sel": {"A|exists": True}, "condition": "sel"}, {"B": "x"}, False),
    ("exists-false", {"sel": {"A|exists": False}, "condition": "sel"}, {"B": "x"}, True),
    ("exists-false-present", {"sel": {"A|exists": False}, "condition": "sel"}, {"A": ""}, False),
    ("null-absent", {"sel": {"A": None}, "condition": "sel"}, {"B": "x"}, True),
    ("null-json-null", {"sel": {"A": None}, "condition": "sel"}, {"A": None, "B": "x"}, True),
    ("null-present", {"sel": {"A": None}, "condition": "sel"}, {"A": "x"}, False),
    ("not-null", {"sel": {"A": None}, "condition": "not sel"}, {"A": "x"}, True),
    ("absent-field-false", {"sel": {"A|contains": "x"}, "condition": "sel"}, {"B": "x"}, False),
    (
        "negated-filter-absent-field-matches",
        {"sel": {"B": "x"}, "filter": {"A|contains": "x"}, "condition": "sel and not filter"},
        {"B": "x"},
        True,
    ),
    (
        "negated-filter-present-field",
        {"sel": {"B": "x"}, "filter": {"A|contains": "x"}, "condition": "sel and not filter"},
        {"B": "x", "A": "axa"},
        False,
    ),
    ("not-alone-absent", {"f": {"A": "x"}, "condition": "not f"}, {"B": "y"}, True),
    # numeric comparisons
    ("lt", {"sel": {"N|lt": 10}, "condition": "sel"}, {"N": 9}, True),
    ("lt-equal", {"sel": {"N|lt": 10}, "condition": "sel"}, {"N": 10}, False),
    ("lte", {"sel": {"N|lte": 10}, "condition": "sel"}, {"N": "10"}, True),
    ("gt", {"sel": {"N|gt": 10}, "condition": "sel"}, {"N": 10.5}, True),
    ("gte", {"sel": {"N|gte": 10}, "condition": "sel"}, {"N": 9}, False),
    ("gt-non-numeric", {"sel": {"N|gt": 10}, "condition": "sel"}, {"N": "many"}, False),
    ("gt-absent", {"sel": {"N|gt": 10}, "condition": "sel"}, {"M": 100}, False),
    # fieldref
    ("fieldref-eq", {"sel": {"A|fieldref": "B"}, "condition": "sel"}, {"A": "Admin", "B": "admin"}, True),
    ("fieldref-neq", {"sel": {"A|fieldref": "B"}, "condition": "sel"}, {"A": "x", "B": "y"}, False),
    ("fieldref-absent", {"sel": {"A|fieldref": "B"}, "condition": "sel"}, {"A": "x"}, False),
    ("fieldref-int", {"sel": {"A|fieldref": "B"}, "condition": "sel"}, {"A": 5, "B": "5"}, True),
    ("fieldref-contains", {"sel": {"A|fieldref|contains": "B"}, "condition": "sel"}, {"A": "xxAByy", "B": "ab"}, True),
    ("fieldref-startswith", {"sel": {"A|fieldref|startswith": "B"}, "condition": "sel"}, {"A": "abc", "B": "ab"}, True),
    ("fieldref-endswith", {"sel": {"A|fieldref|endswith": "B"}, "condition": "sel"}, {"A": "abc", "B": "ab"}, False),
    # keywords
    ("keyword", {"keywords": ["mimikatz"], "condition": "keywords"}, {"A": "run MimiKatz now", "B": 1}, True),
    ("keyword-miss", {"keywords": ["mimikatz"], "condition": "keywords"}, {"A": "nothing"}, False),
    ("keyword-any-field", {"keywords": ["needle"], "condition": "keywords"}, {"A": "x", "B": "a needle"}, True),
    ("keyword-list-or", {"keywords": ["a1b2", "c3d4"], "condition": "keywords"}, {"A": "zc3d4z"}, True),
    ("keyword-wildcard", {"keywords": ["evil*payload"], "condition": "keywords"}, {"A": "evil_x_payload.bin"}, True),
    (
        "keyword-not-across-fields",
        {"keywords": ["evil*payload"], "condition": "keywords"},
        {"A": "evil", "B": "payload"},
        False,
    ),
    ("keyword-int-field", {"keywords": ["4625"], "condition": "keywords"}, {"EventID": 4625}, True),
    (
        "keyword-all",
        {"keywords": {"|all": ["alpha", "beta"]}, "condition": "keywords"},
        {"A": "beta", "B": "alpha"},
        True,
    ),
    ("keyword-all-miss", {"keywords": {"|all": ["alpha", "beta"]}, "condition": "keywords"}, {"A": "beta"}, False),
    # conditions: 1 of / all of / them / nesting
    (
        "1-of-pattern",
        {"sel_a": {"A": "1"}, "sel_b": {"B": "2"}, "other": {"C": "3"}, "condition": "1 of sel_*"},
        {"B": "2"},
        True,
    ),
    (
        "1-of-pattern-other",
        {"sel_a": {"A": "1"}, "sel_b": {"B": "2"}, "other": {"C": "3"}, "condition": "1 of sel_*"},
        {"C": "3"},
        False,
    ),
    (
        "all-of-pattern",
        {"sel_a": {"A": "1"}, "sel_b": {"B": "2"}, "condition": "all of sel_*"},
        {"A": "1", "B": "2"},
        True,
    ),
    ("all-of-pattern-miss", {"sel_a": {"A": "1"}, "sel_b": {"B": "2"}, "condition": "all of sel_*"}, {"A": "1"}, False),
    ("1-of-them", {"a": {"A": "1"}, "b": {"B": "2"}, "condition": "1 of them"}, {"B": "2"}, True),
    ("all-of-them", {"a": {"A": "1"}, "b": {"B": "2"}, "condition": "all of them"}, {"B": "2"}, False),
    (
        "not-1-of",
        {"s": {"S": "x"}, "f_a": {"A": "1"}, "f_b": {"B": "2"}, "condition": "s and not 1 of f_*"},
        {"S": "x", "B": "2"},
        False,
    ),
    (
        "not-1-of-none",
        {"s": {"S": "x"}, "f_a": {"A": "1"}, "f_b": {"B": "2"}, "condition": "s and not 1 of f_*"},
        {"S": "x"},
        True,
    ),
    (
        "nested",
        {"a": {"A": "1"}, "b": {"B": "2"}, "c": {"C": "3"}, "condition": "(a or b) and not (c and a)"},
        {"A": "1", "C": "3"},
        False,
    ),
    (
        "nested-2",
        {"a": {"A": "1"}, "b": {"B": "2"}, "c": {"C": "3"}, "condition": "(a or b) and not (c and a)"},
        {"B": "2", "C": "3"},
        True,
    ),
    ("double-not", {"a": {"A": "1"}, "condition": "not not a"}, {"A": "1"}, True),
    ("condition-list", {"a": {"A": "1"}, "b": {"B": "2"}, "condition": ["a", "b"]}, {"B": "2"}, True),
    # multi-valued fields: any item matches
    ("list-value-any", {"sel": {"Tags|contains": "evil"}, "condition": "sel"}, {"Tags": ["ok", "so evil"]}, True),
    ("list-value-none", {"sel": {"Tags": "evil"}, "condition": "sel"}, {"Tags": ["ok", "so evil"]}, False),
    ("nul-in-value", {"sel": {"A|contains": "b"}, "condition": "sel"}, {"A": "a\x00b"}, True),
]


@pytest.mark.parametrize(("name", "detection", "row", "expected"), CASES, ids=[c[0] for c in CASES])
def test_modifier_semantics(name: str, detection: dict[str, Any], row: dict[str, Any], expected: bool) -> None:
    assert fires(detection, row) is expected, name


def test_timestamp_part_modifiers() -> None:
    det = {"sel": {"UtcTime|hour": 3}, "condition": "sel"}
    assert matches(det, [{"UtcTime": "2026-03-01 03:15:00.123"}, {"UtcTime": "2026-03-01 04:15:00"}]) == [True, False]


def test_many_rows_share_one_scan() -> None:
    det = {"sel": {"C|contains": "evil"}, "filter": {"U": "svc"}, "condition": "sel and not filter"}
    rows = [{"C": f"x{i}" + ("evil" if i % 3 == 0 else ""), "U": "svc" if i % 5 == 0 else "u"} for i in range(300)]
    got = matches(det, rows)
    assert got == [i % 3 == 0 and i % 5 != 0 for i in range(300)]


def test_logsource_routing() -> None:
    """A rule applies only to events of its log source; Sysmon event ids give categories."""
    text = rule_text(
        {"sel": {"Image|endswith": "\\cmd.exe"}, "condition": "sel"},
        logsource={"product": "windows", "category": "process_creation"},
    )
    eng = engine_for(text)
    sysmon = {"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 1, "Image": "C:\\cmd.exe"}
    sysmon_file = dict(sysmon, EventID=11)
    security = {
        "Channel": "Security",
        "EventID": 4688,
        "NewProcessName": "C:\\cmd.exe",
        "Image": "C:\\cmd.exe",
    }
    other = {"Image": "C:\\cmd.exe"}
    events = [
        event(sysmon, product=None),
        event(sysmon_file, product=None),
        event(security, product=None),
        event(other, product="linux"),
    ]
    assert sorted({i for i, _ in eng.match(events)}) == [0, 2]
    # the Security-log variant reads NewProcessName (pySigma's windows-audit pipeline), not Image
    security_only_image = {"Channel": "Security", "EventID": 4688, "Image": "C:\\cmd.exe"}
    assert eng.match([event(security_only_image, product=None)]) == []


def test_unsupported_rules_are_reported_not_dropped() -> None:
    bad = rule_text(
        {"sel": {"A|expand": "%unknown_list%"}, "condition": "sel"}, rule_id="00000000-0000-4000-8000-0000000000ee"
    )
    broken = "title: x\ndetection: [1, 2\n"
    eng = engine_for(rule_text({"sel": {"A": "1"}, "condition": "sel"}), bad, broken)
    ruleset = eng.ruleset
    assert ruleset is not None
    reasons = {p.rule_id: p.reason for p in ruleset.problems}
    assert "placeholder" in reasons["00000000-0000-4000-8000-0000000000ee"]
    assert any("YAML" in p.reason for p in ruleset.problems)
    assert ruleset.stats.rules == 1


def test_placeholder_expanded_with_configured_values() -> None:
    text = rule_text({"sel": {"Host|expand": "%dcs%"}, "condition": "sel"})
    eng = engine_for(text, placeholders={"dcs": ["dc1", "dc2*"]})
    hits = eng.match([event({"Host": "DC1"}), event({"Host": "dc2.corp"}), event({"Host": "dc3"})])
    assert sorted({i for i, _ in hits}) == [0, 1]
