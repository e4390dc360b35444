"""Targets no playbook may act on, whatever the policy's rules say: the operating system and the network.

Attackers live off the land: they run ``vssadmin.exe``, ``wmic.exe``, ``bcdedit.exe`` and ``cmd.exe``
from ``C:\\Windows\\System32``.  Killing that process instance is right; quarantining the file or
blocking its hash breaks every machine of the tenant.  Killing ``lsass.exe`` or ``csrss.exe`` reboots
the host, and isolating the firewall or VPN gateway cuts off everyone behind it.  These functions are
pure and take their lists from the :class:`~openmdr.respond.policy.AuthorityPolicy` (defaults below),
so a tenant can add its own (``protected_paths: ["C:\\\\Program Files\\\\7-Zip\\\\*"]``).
"""

from __future__ import annotations

import fnmatch
import re
import shlex
from collections.abc import Iterable, Sequence

#: Operating-system directories (globs on normalized paths: lower case, ``/``, any drive letter as ``?:``).
DEFAULT_PROTECTED_PATHS: tuple[str, ...] = (
    "%systemroot%/*", "%windir%/*", "?:/windows/*", "?:/program files/windows *", "?:/program files (x86)/windows *",
    "?:/program files/windowsapps/*", "?:/program files/internet explorer/*",
    "?:/program files (x86)/internet explorer/*", "?:/program files/common files/microsoft shared/*",
    "/bin/*", "/sbin/*", "/usr/bin/*", "/usr/sbin/*", "/usr/lib/*", "/usr/lib64/*", "/usr/libexec/*", "/lib/*",
    "/lib64/*", "/boot/*", "/system/*",
)  # fmt: skip
#: Operating-system executables known by name, for targets that come without a path.
DEFAULT_PROTECTED_IMAGES: tuple[str, ...] = (
    "cmd.exe", "powershell.exe", "pwsh.exe", "conhost.exe", "vssadmin.exe", "wmic.exe", "bcdedit.exe", "wbadmin.exe",
    "rundll32.exe", "regsvr32.exe", "mshta.exe", "certutil.exe", "bitsadmin.exe", "net.exe", "net1.exe", "sc.exe",
    "schtasks.exe", "reg.exe", "whoami.exe", "curl.exe", "wsmprovhost.exe", "wscript.exe", "cscript.exe",
    "msiexec.exe", "explorer.exe", "svchost.exe", "lsass.exe", "taskkill.exe", "netsh.exe", "nltest.exe",
    "sh", "bash", "dash", "zsh", "sudo", "ssh", "curl", "wget", "python3", "perl",
)  # fmt: skip
#: Processes whose death crashes, reboots or locks up the machine (or, by name, kills every instance).
DEFAULT_CRITICAL_PROCESSES: tuple[str, ...] = (
    "system", "smss.exe", "csrss.exe", "wininit.exe", "winlogon.exe", "services.exe", "lsass.exe", "lsaiso.exe",
    "svchost.exe", "dwm.exe", "fontdrvhost.exe", "init", "systemd", "launchd", "kernel_task", "kthreadd",
)  # fmt: skip
#: Host names (globs on the short name, lower case) of firewalls, VPN gateways, routers and switches.
DEFAULT_NETWORK_DEVICES: tuple[str, ...] = (
    "fgt-*", "fgt[0-9]*", "fortigate*", "pfsense*", "opnsense*", "panfw*", "pa-fw*", "asa-*", "fw-*", "*-fw",
    "*-fw-*", "*-fw[0-9]*", "vpn-*", "*-vpn", "*-vpn-*", "*-vpn[0-9]*", "gw-*", "*-gw", "*-gw[0-9]*", "rtr-*",
    "*-rtr[0-9]*", "sw-*", "*-core-sw*",
)  # fmt: skip
#: Inventory classes that are network equipment.
NETWORK_CLASSES: tuple[str, ...] = ("network",)
#: Action kinds that act on a file or its hash (the guard for operating-system binaries).
FILE_KINDS: tuple[str, ...] = ("quarantine_file", "block_hash")
#: Action kinds that act on a host through its EDR agent (never on network equipment).
HOST_KINDS: tuple[str, ...] = ("isolate_host", "kill_process", "quarantine_file")

_DRIVE = re.compile(r"^[a-z]:/")


def normalize_path(path: str) -> str:
    """A file path for matching: unquoted, ``/`` separators, lower case, ``\\\\?\\`` and drive letter folded."""
    p = path.strip().strip('"').strip("'").replace("\\", "/").lower()
    for prefix in ("//?/", "/??/"):
        if p.startswith(prefix):
            p = p[len(prefix) :]
    p = p.replace("%systemroot%", "?:/windows").replace("%windir%", "?:/windows")
    if p.startswith("/systemroot/"):
        p = "?:/windows/" + p[len("/systemroot/") :]
    if _DRIVE.match(p):
        p = "?" + p[1:]
    while "//" in p:
        p = p.replace("//", "/")
    return p


def image_of(target: str) -> str:
    """The executable of a process target: a path, a bare name, or the first word of a command line."""
    text = target.strip()
    if not text:
        return ""
    if text.startswith(('"', "'")):
        quote = text[0]
        end = text.find(quote, 1)
        return text[1:end] if end > 0 else text[1:]
    lower = text.lower()
    for ext in (".exe", ".com", ".bat", ".cmd", ".ps1", ".dll"):
        at = lower.find(ext + " ")
        if at > 0:
            return text[: at + len(ext)]
    try:
        parts = shlex.split(text, posix="\\" not in text)
    except ValueError:
        parts = text.split()
    return parts[0] if parts else text


def base_name(path: str) -> str:
    """The file name of a path (either separator), lower case."""
    return normalize_path(path).rsplit("/", 1)[-1]


def protected_path(path: str, patterns: Sequence[str] = DEFAULT_PROTECTED_PATHS) -> str | None:
    """The protected directory pattern ``path`` lies under, or None (bare names never match here)."""
    p = normalize_path(path)
    if "/" not in p:
        return None
    for pattern in patterns:
        if fnmatch.fnmatchcase(p, normalize_path(pattern)):
            return pattern
    return None


def protected_file(
    path: str, patterns: Sequence[str] = DEFAULT_PROTECTED_PATHS, images: Sequence[str] = DEFAULT_PROTECTED_IMAGES
) -> str | None:
    """Why the file ``path`` (a path or a bare executable name) belongs to the operating system, or None."""
    under = protected_path(path, patterns)
    if under is not None:
        return f"{path} is an operating-system file (under {under})"
    name = base_name(path)
    if "/" not in normalize_path(path) and name in {i.lower() for i in images}:
        return f"{path} is an operating-system executable"
    return None


def protected_hash(
    value: str,
    images: Iterable[str],
    patterns: Sequence[str] = DEFAULT_PROTECTED_PATHS,
    names: Sequence[str] = DEFAULT_PROTECTED_IMAGES,
) -> str | None:
    """Why a hash must not be blocked: the case's alerts pair it with an operating-system image (or None)."""
    for image in sorted(images):
        why = protected_file(image, patterns, names)
        if why is not None:
            return f"hash {value} is of {image}, {why.split(' is ', 1)[1]}"
    return None


def critical_process(target: str, names: Sequence[str] = DEFAULT_CRITICAL_PROCESSES) -> str | None:
    """Why killing ``target`` would take the machine down, or None."""
    image = image_of(target)
    name = base_name(image) if image else ""
    if name and name in {n.lower() for n in names}:
        return f"{name} is a critical system process: killing it crashes or reboots the host (or every instance)"
    return None


def network_device(host: str, asset_class: str | None, patterns: Sequence[str] = DEFAULT_NETWORK_DEVICES) -> str | None:
    """Why ``host`` is network equipment (inventory class or a firewall/VPN/router name), or None."""
    if asset_class in NETWORK_CLASSES:
        return f"{host} is a network device in the inventory"
    short = host.strip().lower().split(".", 1)[0]
    for pattern in patterns:
        if fnmatch.fnmatchcase(short, pattern.lower()):
            return f"{host} is named like a network device ({pattern})"
    return None
