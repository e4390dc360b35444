"""Registered domain ("eTLD+1") of a DNS name, aware of the Public Suffix List.

DNS-tunnel detection counts distinct subdomains per *registered* domain: the part of a
name an owner bought.  ``a.b.example.co.uk`` belongs to ``example.co.uk``, not ``co.uk``;
``x1.ngrok.io`` belongs to its own customer, not to ``ngrok.io``.  That needs the Public
Suffix List (https://publicsuffix.org, MPL-2.0).  None of the Python packages that ship it
(``tldextract``, ``publicsuffix2``, ``publicsuffixlist``) is a dependency of OpenMDR, so the
list is read from, in order:

1. the file named by the environment variable ``OPENMDR_PUBLIC_SUFFIX_LIST``;
2. the copy operating systems ship: ``/usr/share/publicsuffix/public_suffix_list.dat``
   (Debian/Ubuntu package ``publicsuffix``), ``/usr/share/publicsuffix/effective_tld_names.dat``;
3. failing both, :data:`BUILTIN_SUFFIXES`: every single-label TLD is a public suffix
   (implicit ``*`` rule) plus a small built-in set of common multi-label suffixes
   (country second-level domains and popular hosting platforms).  This fallback is
   documented in ``docs/analytics.md``; it errs towards longer registered domains for
   suffixes it does not know (``a.b.example.unknown-sld.xx`` -> ``unknown-sld.xx``).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

#: Longest DNS name (RFC 1035: 255 octets on the wire, 253 characters as text).
MAX_NAME_LENGTH = 253

SYSTEM_LIST_PATHS: tuple[Path, ...] = (
    Path("/usr/share/publicsuffix/public_suffix_list.dat"),
    Path("/usr/share/publicsuffix/effective_tld_names.dat"),
)

#: Multi-label public suffixes used when no Public Suffix List file is available.
BUILTIN_SUFFIXES: frozenset[str] = frozenset(
    f"{sld}.{cc}"
    for cc, slds in {
        "uk": ("co", "org", "ac", "gov", "ltd", "plc", "me", "net", "nhs", "police", "sch"),
        "au": ("com", "net", "org", "edu", "gov", "asn", "id"),
        "nz": ("co", "net", "org", "ac", "govt", "school", "geek"),
        "jp": ("co", "ne", "or", "ac", "ad", "ed", "go", "gr", "lg"),
        "kr": ("co", "ne", "or", "ac", "go", "re", "pe"),
        "cn": ("com", "net", "org", "gov", "edu", "ac"),
        "hk": ("com", "net", "org", "gov", "edu", "idv"),
        "tw": ("com", "net", "org", "gov", "edu", "idv"),
        "sg": ("com", "net", "org", "gov", "edu"),
        "in": ("co", "net", "org", "firm", "gen", "ind", "ac", "edu", "gov", "res"),
        "br": ("com", "net", "org", "gov", "edu", "art", "blog"),
        "mx": ("com", "net", "org", "gob", "edu"),
        "ar": ("com", "net", "org", "gob", "edu"),
        "za": ("co", "net", "org", "gov", "ac", "web"),
        "tr": ("com", "net", "org", "gov", "edu", "gen", "web"),
        "ru": ("com", "net", "org", "msk", "spb"),
        "ua": ("com", "net", "org", "gov", "edu", "in"),
        "il": ("co", "net", "org", "ac", "gov"),
        "th": ("co", "in", "or", "ac", "go"),
        "my": ("com", "net", "org", "gov", "edu"),
        "id": ("co", "net", "or", "ac", "go", "web"),
        "ph": ("com", "net", "org", "gov", "edu"),
        "vn": ("com", "net", "org", "gov", "edu"),
        "pk": ("com", "net", "org", "gov", "edu"),
        "eg": ("com", "net", "org", "gov", "edu"),
        "sa": ("com", "net", "org", "gov", "edu"),
        "ng": ("com", "net", "org", "gov", "edu"),
        "ke": ("co", "or", "ne", "go", "ac"),
        "pl": ("com", "net", "org", "gov", "edu"),
        "es": ("com", "nom", "org", "gob", "edu"),
        "fr": ("asso", "com", "gouv", "nom"),
        "at": ("co", "or", "gv", "ac"),
        "be": ("ac",),
        "gr": ("com", "net", "org", "gov", "edu"),
    }.items()
    for sld in slds
) | frozenset(
    {
        "github.io",
        "gitlab.io",
        "herokuapp.com",
        "blogspot.com",
        "appspot.com",
        "azurewebsites.net",
        "cloudapp.net",
        "cloudfront.net",
        "s3.amazonaws.com",
        "elasticbeanstalk.com",
        "firebaseapp.com",
        "web.app",
        "netlify.app",
        "vercel.app",
        "pages.dev",
        "workers.dev",
        "ngrok.io",
        "ngrok-free.app",
        "duckdns.org",
        "no-ip.org",
        "ddns.net",
        "dyndns.org",
        "glitch.me",
        "repl.co",
        "trycloudflare.com",
    }
)


@dataclass(slots=True)
class PublicSuffixList:
    """Parsed Public Suffix List rules (normal, wildcard and exception rules)."""

    rules: set[str] = field(default_factory=set)
    wildcards: set[str] = field(default_factory=set)
    exceptions: set[str] = field(default_factory=set)
    source: str = "builtin"

    @classmethod
    def parse(cls, text: str, source: str = "text") -> PublicSuffixList:
        """Read the list's text format (comments ``//``, one rule per line, ``*.`` and ``!``)."""
        out = cls(source=source)
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("//"):
                continue
            rule = line.split()[0].lower()
            for form in _forms(rule.lstrip("!")):
                if rule.startswith("!"):
                    out.exceptions.add(form)
                elif form.startswith("*."):
                    out.wildcards.add(form[2:])
                else:
                    out.rules.add(form)
        return out

    @classmethod
    def builtin(cls) -> PublicSuffixList:
        """The small built-in fallback (see module docstring)."""
        return cls(rules=set(BUILTIN_SUFFIXES), source="builtin")

    def public_suffix_start(self, labels: list[str]) -> int:
        """Index of the first label of the public suffix of ``labels``."""
        n = len(labels)
        for i in range(n):
            candidate = ".".join(labels[i:])
            if candidate in self.exceptions:
                return i + 1
            if candidate in self.rules:
                return i
            if i + 1 < n and ".".join(labels[i + 1 :]) in self.wildcards:
                return i
        return n - 1

    def registered_domain(self, name: str) -> str | None:
        """The registered domain of ``name``, or None if ``name`` is itself a public suffix.

        Names longer than DNS allows (253 characters) are not names: None.
        """
        if len(name) > MAX_NAME_LENGTH + 1:
            return None
        labels = [label for label in name.strip().rstrip(".").lower().split(".") if label]
        if not labels:
            return None
        start = self.public_suffix_start(labels)
        if start == 0:
            return None
        return ".".join(labels[start - 1 :])


def _forms(rule: str) -> list[str]:
    """The rule as written plus its IDNA (punycode) form when it has non-ASCII labels."""
    if rule.isascii():
        return [rule]
    forms = [rule]
    with contextlib.suppress(UnicodeError):
        forms.append(".".join(p if p == "*" else p.encode("idna").decode("ascii") for p in rule.split(".")))
    return forms


@lru_cache(maxsize=1)
def default_suffix_list() -> PublicSuffixList:
    """The Public Suffix List from the environment or the system, else the built-in set."""
    candidates: list[Path] = []
    env = os.environ.get("OPENMDR_PUBLIC_SUFFIX_LIST")
    if env:
        candidates.append(Path(env))
    candidates.extend(SYSTEM_LIST_PATHS)
    for path in candidates:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            continue
        parsed = PublicSuffixList.parse(text, source=str(path))
        if parsed.rules:
            return parsed
    return PublicSuffixList.builtin()


@lru_cache(maxsize=200_000)
def registered_domain(name: str) -> str | None:
    """Registered domain of ``name`` with the default list (cached; see :class:`PublicSuffixList`)."""
    return default_suffix_list().registered_domain(name)
