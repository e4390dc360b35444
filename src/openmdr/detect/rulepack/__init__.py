"""OpenMDR's own Sigma rules, shipped with the package.

The rules here are written by the project (not copied from SigmaHQ) and cover the
endpoint and identity steps of the attack behaviours the platform's reference scenarios
exercise: encoded PowerShell, WinRM lateral movement, password-protected archive staging,
shadow-copy deletion and boot-recovery tampering, LSASS dumping, and additions to
privileged groups.  Load them like any Sigma library:
``openmdr.detect.load_rules([RULEPACK_DIR])``.
"""

from __future__ import annotations

from pathlib import Path

#: Directory holding the rule pack's ``.yml`` files.
RULEPACK_DIR: Path = Path(__file__).resolve().parent


def rule_files() -> list[Path]:
    """The rule pack's Sigma files, sorted by name."""
    return sorted(RULEPACK_DIR.glob("*.yml"))


__all__ = ["RULEPACK_DIR", "rule_files"]
