"""Windows event parsers: EVTX records ("evtx"), evtx_dump JSON ("winevent_json") and Winlogbeat JSON.

All three produce ``fields`` in Sigma's Windows field naming, because Sigma rules are
evaluated on them: the EventData (or the innermost UserData element) children at top
level with their original names (``Image``, ``CommandLine``, ``TargetObject``...), and the
System children as ``EventID`` (int), ``Channel``, ``Computer``, ``Provider_Name``,
``Provider_Guid``, ``EventRecordID``, ``Level``, ``Task``, ``Opcode``, ``Keywords``,
``Version``, ``TimeCreated`` (the SystemTime text), ``Security_UserID``,
``Execution_ProcessID``, ``Execution_ThreadID`` (generally ``<Element>_<attribute>``).
Unnamed EventData (``<Data>`` without ``Name``) is kept as ``Data`` (text or list).  An
EventData name that collides with a System name is kept as ``EventData_<name>``.

Normalizations, so that one record read from its EVTX file and from its JSON export gives
the same event (tested on every SigmaHQ regression case that ships both):

* ``#text``/``#attributes`` wrappers are unwrapped (``EventID`` with ``Qualifiers``, Data
  elements with attributes), and evtx's ``separate_json_attributes`` layout
  (``Provider_attributes``) is read the same way;
* the System numbers (EventID, EventRecordID, Version, Level, Task, Opcode, Execution
  ids) become ints where the exporter wrote digit strings;
* trailing whitespace of EventData/UserData text values is removed.  The EVTX reader
  returns e.g. Sysmon's ``ParentCommandLine`` as ``"C:\\Windows\\system32\\cmd.exe" ``
  while evtx_dump JSON exports (and Sigma's regression samples) carry it trimmed; the
  trimmed form is the one rules are written and tested against.  This is the only
  value change.

Winlogbeat input comes in three dialects, all read by "winlogbeat_json": the flat
OTRF/Mordor and NXLog documents (``Channel``, ``EventID``, ``Hostname``, ``SourceName``,
``@timestamp`` and the EventData names at top level; ``Computer``, ``Provider_Name`` and
``EventRecordID`` are added as aliases of ``Hostname``, ``SourceName``/``ProviderName`` and
``RecordNumber``), ECS documents with a nested ``winlog`` object, and Winlogbeat 5/6
documents (``log_name``, ``computer_name``, ``event_data``...).  For the nested dialects the
event data goes to top level, the System equivalents get their Sigma names, and every
other key is kept with its dotted name (``winlog.api``, ``host.name``, ``message``...).

Entities (host, user, addresses, process, parent, file, hashes, DNS name) and
``action``/``category``/``outcome`` are derived per channel and EventID for Sysmon,
Security, System and PowerShell events; ``service`` is Sigma's service name of the
channel.  ``natural_key`` is ``Channel|Computer|EventRecordID`` so the same record imported
from EVTX, JSON or Winlogbeat gets the same event id.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from openmdr.models import Event, ParseError, RawRecord
from openmdr.normalize.base import MAX_NESTING, register
from openmdr.normalize.parsers.jsonlines import (
    as_int,
    as_port,
    check_container,
    first_line,
    flatten_object,
    load_json_object,
    load_json_objects,
    to_time,
)

SYSMON_CHANNEL = "Microsoft-Windows-Sysmon/Operational"
SECURITY_CHANNEL = "Security"
SYSTEM_CHANNEL = "System"
POWERSHELL_CHANNEL = "Microsoft-Windows-PowerShell/Operational"
POWERSHELL_CORE_CHANNEL = "PowerShellCore/Operational"
POWERSHELL_CLASSIC_CHANNEL = "Windows PowerShell"

#: Sigma service name of each Windows channel (Sigma's Windows log source taxonomy).
SERVICE_BY_CHANNEL: dict[str, str] = {
    "Security": "security",
    "System": "system",
    "Application": "application",
    SYSMON_CHANNEL: "sysmon",
    POWERSHELL_CHANNEL: "powershell",
    POWERSHELL_CORE_CHANNEL: "powershell",
    POWERSHELL_CLASSIC_CHANNEL: "powershell-classic",
    "Microsoft-Windows-TaskScheduler/Operational": "taskscheduler",
    "Microsoft-Windows-WMI-Activity/Operational": "wmi",
    "DNS Server": "dns-server",
    "Microsoft-Windows-DNS-Server/Audit": "dns-server-audit",
    "Microsoft-Windows-DNS-Server/Analytical": "dns-server-analytic",
    "Microsoft-Windows-DriverFrameworks-UserMode/Operational": "driver-framework",
    "Microsoft-Windows-NTLM/Operational": "ntlm",
    "Microsoft-Windows-DHCP-Server/Operational": "dhcp",
    "MSExchange Management": "msexchange-management",
    "Microsoft-Windows-AppLocker/MSI and Script": "applocker",
    "Microsoft-Windows-AppLocker/EXE and DLL": "applocker",
    "Microsoft-Windows-AppLocker/Packaged app-Deployment": "applocker",
    "Microsoft-Windows-AppLocker/Packaged app-Execution": "applocker",
    "Microsoft-Windows-PrintService/Admin": "printservice-admin",
    "Microsoft-Windows-PrintService/Operational": "printservice-operational",
    "Microsoft-Windows-CodeIntegrity/Operational": "codeintegrity-operational",
    "Microsoft-Windows-SmbClient/Security": "smbclient-security",
    "Microsoft-Windows-Windows Firewall With Advanced Security/Firewall": "firewall-as",
    "Microsoft-Windows-Bits-Client/Operational": "bits-client",
    "Microsoft-Windows-Windows Defender/Operational": "windefend",
    "Microsoft-Windows-TerminalServices-LocalSessionManager/Operational": ("terminalservices-localsessionmanager"),
    "Microsoft-ServiceBus-Client": "microsoft-servicebus-client",
    "Microsoft-Windows-LDAP-Client/Debug": "ldap_debug",
    "Microsoft-Windows-Security-Mitigations/Kernel Mode": "security-mitigations",
    "Microsoft-Windows-Security-Mitigations/User Mode": "security-mitigations",
    "Microsoft-Windows-Diagnosis-Scripted/Operational": "diagnosis-scripted",
    "Microsoft-Windows-Shell-Core/Operational": "shell-core",
    "OpenSSH/Operational": "openssh",
    "Microsoft-Windows-BitLocker/BitLocker Management": "bitlocker",
    "Microsoft-Windows-VHDMP/Operational": "vhdmp",
    "Microsoft-Windows-AppXDeploymentServer/Operational": "appxdeployment-server",
    "Microsoft-Windows-LSA/Operational": "lsa-server",
    "Microsoft-Windows-AppxPackaging/Operational": "appxpackaging-om",
    "Microsoft-Windows-DNS Client Events/Operational": "dns-client",
    "Microsoft-Windows-AppModel-Runtime/Admin": "appmodel-runtime",
    "Microsoft-Windows-CAPI2/Operational": "capi2",
    "Microsoft-Windows-CertificateServicesClient-Lifecycle-System/Operational": (
        "certificateservicesclient-lifecycle-system"
    ),
}

#: System values that are numbers; exporters differ on writing them as ints or digit strings.
_SYSTEM_INT_KEYS = (
    "EventID", "EventRecordID", "Version", "Level", "Task", "Opcode", "Execution_ProcessID",
    "Execution_ThreadID",
)  # fmt: skip

# Keywords bits of the Security log's audit outcome.
_AUDIT_SUCCESS = 0x0020000000000000
_AUDIT_FAILURE = 0x0010000000000000

_NO_VALUE = frozenset({"", "-", "N/A"})
#: Every character ``str.isspace`` accepts (all lie below U+3001): a set test is cheaper than the method call.
_WHITESPACE = frozenset(c for c in map(chr, range(0x3001)) if c.isspace())
_IANA_PROTOCOLS = {"6": "tcp", "17": "udp", "1": "icmp", "58": "ipv6-icmp", "2": "igmp", "47": "gre"}


# ---------------------------------------------------------------------------
# Value helpers
# ---------------------------------------------------------------------------


def _trim(value: Any, depth: int) -> Any:
    """Remove trailing whitespace of text (and of text in lists); refuse over-deep containers."""
    kind = type(value)
    if kind is str:
        return value.rstrip() if value and value[-1].isspace() else value
    if kind is list:
        check_container(value, depth)
        return [v.rstrip() if type(v) is str else v for v in value]
    if kind is dict:
        if "#text" in value and all(k == "#text" or k == "#attributes" for k in value):
            return _trim(value["#text"], depth + 1)
        check_container(value, depth)
    return value


def _text(value: Any) -> str | None:
    """A meaningful text value: Windows writes "-" (and sometimes "") for "none"."""
    if type(value) is str:
        return None if value in _NO_VALUE else value
    if type(value) is int:
        return str(value)
    return None


def _ip(value: Any) -> str | None:
    """An address from a Windows field: "-"/empty dropped, IPv4-mapped IPv6 unwrapped."""
    if type(value) is not str or value in _NO_VALUE:
        return None
    if value.startswith("::ffff:") and "." in value:
        return value[7:]
    return value


def _split_account(value: Any) -> tuple[str | None, str | None]:
    """Split "DOMAIN\\user" or "user@realm" into (user, domain)."""
    text = _text(value)
    if text is None:
        return None, None
    domain, sep, user = text.rpartition("\\")
    if sep:
        return user or None, domain or None
    user, sep, realm = text.partition("@")
    if sep and user:
        return user, realm or None
    return text, None


def _set_hashes(event: Event, value: Any) -> None:
    """Fill the hash entities from a Sysmon ``Hashes`` value ("SHA1=..,MD5=..,SHA256=..,IMPHASH=..")."""
    if type(value) is not str or "=" not in value:
        return
    for part in value.split(","):
        algo, _sep, digest = part.partition("=")
        algo = algo.strip().upper()
        digest = digest.strip().lower()
        if not digest:
            continue
        if algo == "SHA256":
            event.hash_sha256 = digest
        elif algo == "SHA1":
            event.hash_sha1 = digest
        elif algo == "MD5":
            event.hash_md5 = digest


def _keyword_outcome(keywords: Any) -> str | None:
    """Audit outcome ("success"/"failure") from Security Keywords (hex text, signed int or names)."""
    kind = type(keywords)
    if kind is str:
        if keywords[:2] not in ("0x", "0X"):
            return None
        try:
            bits = int(keywords, 16)
        except ValueError:
            return None
    elif kind is int:
        bits = keywords
    elif kind is list:
        names = {str(k).lower() for k in keywords}
        if "audit failure" in names:
            return "failure"
        return "success" if "audit success" in names else None
    else:
        return None
    if bits & _AUDIT_FAILURE:
        return "failure"
    if bits & _AUDIT_SUCCESS:
        return "success"
    return None


def _status_outcome(status: Any) -> str | None:
    """Kerberos/NTLM result code: 0 is success, anything else a failure."""
    code = as_int(status)
    if code is None:
        return None
    return "success" if code == 0 else "failure"


def _key_value_line(text: Any, key: str) -> str | None:
    """The value after ``key`` up to the end of its line in a "Key=Value" block of text."""
    if type(text) is not str:
        return None
    start = text.find(key)
    if start < 0:
        return None
    start += len(key)
    end = len(text)
    for stop in ("\r", "\n"):
        i = text.find(stop, start)
        if 0 <= i < end:
            end = i
    value = text[start:end].strip()
    return value or None


# ---------------------------------------------------------------------------
# Entity extraction, per channel and EventID
# ---------------------------------------------------------------------------

Handler = Callable[[Event, Mapping[str, Any]], None]


def _process(event: Event, f: Mapping[str, Any], image: str = "Image", pid: str = "ProcessId") -> None:
    event.process_image = _text(f.get(image))
    event.process_pid = as_int(f.get(pid))


def _sysmon_user(event: Event, f: Mapping[str, Any], key: str = "User") -> None:
    event.user, event.user_domain = _split_account(f.get(key))


def _sysmon_basic(event: Event, f: Mapping[str, Any]) -> None:
    _process(event, f)
    _sysmon_user(event, f)


def _sysmon_process_creation(event: Event, f: Mapping[str, Any]) -> None:
    _sysmon_basic(event, f)
    event.process_command_line = _text(f.get("CommandLine"))
    event.parent_image = _text(f.get("ParentImage"))
    event.parent_pid = as_int(f.get("ParentProcessId"))
    event.parent_command_line = _text(f.get("ParentCommandLine"))
    _set_hashes(event, f.get("Hashes"))


def _sysmon_network(event: Event, f: Mapping[str, Any]) -> None:
    _sysmon_basic(event, f)
    event.src_ip = _ip(f.get("SourceIp"))
    event.src_port = as_port(f.get("SourcePort"))
    event.dst_ip = _ip(f.get("DestinationIp"))
    event.dst_port = as_port(f.get("DestinationPort"))
    protocol = _text(f.get("Protocol"))
    event.protocol = protocol.lower() if protocol else None
    event.domain = _text(f.get("DestinationHostname"))


def _sysmon_image_load(event: Event, f: Mapping[str, Any]) -> None:
    _sysmon_basic(event, f)
    event.file_path = _text(f.get("ImageLoaded"))
    _set_hashes(event, f.get("Hashes"))


def _sysmon_driver_load(event: Event, f: Mapping[str, Any]) -> None:
    event.file_path = _text(f.get("ImageLoaded"))
    _set_hashes(event, f.get("Hashes"))


def _sysmon_source_process(event: Event, f: Mapping[str, Any]) -> None:
    _process(event, f, "SourceImage", "SourceProcessId")
    _sysmon_user(event, f, "SourceUser")


def _sysmon_raw_access(event: Event, f: Mapping[str, Any]) -> None:
    _sysmon_basic(event, f)
    event.file_path = _text(f.get("Device"))


def _sysmon_file(event: Event, f: Mapping[str, Any]) -> None:
    _sysmon_basic(event, f)
    event.file_path = _text(f.get("TargetFilename"))
    _set_hashes(event, f.get("Hashes") or f.get("Hash"))


def _sysmon_dns(event: Event, f: Mapping[str, Any]) -> None:
    _sysmon_basic(event, f)
    event.domain = _text(f.get("QueryName"))


def _sysmon_wmi(event: Event, f: Mapping[str, Any]) -> None:
    _sysmon_user(event, f)


def _sysmon_registry(event: Event, f: Mapping[str, Any]) -> None:
    _sysmon_basic(event, f)
    kind = f.get("EventType")
    if event.category == "registry_add" and kind in ("DeleteKey", "DeleteValue"):
        event.category = "registry_delete"
        event.action = "registry_delete"


#: Sysmon EventID -> (Sigma category, action, entity handler).
SYSMON_EVENTS: dict[int, tuple[str | None, str, Handler | None]] = {
    1: ("process_creation", "process_start", _sysmon_process_creation),
    2: ("file_change", "file_time_change", _sysmon_file),
    3: ("network_connection", "network_connection", _sysmon_network),
    4: ("sysmon_status", "sysmon_state_change", None),
    5: ("process_termination", "process_end", _sysmon_basic),
    6: ("driver_load", "driver_load", _sysmon_driver_load),
    7: ("image_load", "image_load", _sysmon_image_load),
    8: ("create_remote_thread", "remote_thread_create", _sysmon_source_process),
    9: ("raw_access_thread", "raw_disk_access", _sysmon_raw_access),
    10: ("process_access", "process_access", _sysmon_source_process),
    11: ("file_event", "file_create", _sysmon_file),
    12: ("registry_add", "registry_create", _sysmon_registry),
    13: ("registry_set", "registry_set", _sysmon_registry),
    14: ("registry_rename", "registry_rename", _sysmon_registry),
    15: ("create_stream_hash", "file_stream_create", _sysmon_file),
    16: ("sysmon_status", "sysmon_config_change", None),
    17: ("pipe_created", "pipe_create", _sysmon_basic),
    18: ("pipe_created", "pipe_connect", _sysmon_basic),
    19: ("wmi_event", "wmi_filter_register", _sysmon_wmi),
    20: ("wmi_event", "wmi_consumer_register", _sysmon_wmi),
    21: ("wmi_event", "wmi_binding_register", _sysmon_wmi),
    22: ("dns_query", "dns_query", _sysmon_dns),
    23: ("file_delete", "file_delete", _sysmon_file),
    24: ("clipboard_capture", "clipboard_change", _sysmon_basic),
    25: ("process_tampering", "process_tampering", _sysmon_basic),
    26: ("file_delete_detected", "file_delete", _sysmon_file),
    27: ("file_block_executable", "file_block_executable", _sysmon_file),
    28: ("file_block_shredding", "file_block_shredding", _sysmon_file),
    29: ("file_executable_detected", "file_executable_detected", _sysmon_file),
    255: ("sysmon_error", "sysmon_error", None),
}


def _target_user(event: Event, f: Mapping[str, Any]) -> None:
    event.user = _text(f.get("TargetUserName"))
    event.user_domain = _text(f.get("TargetDomainName"))
    if event.user and "@" in event.user:  # Kerberos service tickets name "user@REALM"
        event.user, realm = _split_account(event.user)
        event.user_domain = event.user_domain or realm


def _subject_user(event: Event, f: Mapping[str, Any]) -> None:
    event.user = _text(f.get("SubjectUserName"))
    event.user_domain = _text(f.get("SubjectDomainName"))


def _logon(event: Event, f: Mapping[str, Any]) -> None:
    _target_user(event, f)
    event.src_ip = _ip(f.get("IpAddress"))
    event.src_port = as_port(f.get("IpPort"))
    _process(event, f, "ProcessName", "ProcessId")
    event.outcome = "success"


def _logon_failed(event: Event, f: Mapping[str, Any]) -> None:
    _logon(event, f)
    event.outcome = "failure"


def _explicit_logon(event: Event, f: Mapping[str, Any]) -> None:
    _subject_user(event, f)
    event.dst_ip = _ip(f.get("IpAddress"))  # 4648 names the target server's address
    event.dst_port = as_port(f.get("IpPort"))
    _process(event, f, "ProcessName", "ProcessId")


def _security_process_creation(event: Event, f: Mapping[str, Any]) -> None:
    event.process_image = _text(f.get("NewProcessName"))
    event.process_pid = as_int(f.get("NewProcessId"))
    event.process_command_line = _text(f.get("CommandLine"))
    event.parent_image = _text(f.get("ParentProcessName"))
    event.parent_pid = as_int(f.get("ProcessId"))
    if _text(f.get("TargetUserName")):  # 4688 v2: the new process's account
        _target_user(event, f)
    else:
        _subject_user(event, f)


def _security_process_end(event: Event, f: Mapping[str, Any]) -> None:
    _subject_user(event, f)
    _process(event, f, "ProcessName", "ProcessId")


def _object_access(event: Event, f: Mapping[str, Any]) -> None:
    _subject_user(event, f)
    _process(event, f, "ProcessName", "ProcessId")
    event.file_path = _text(f.get("ObjectName"))


def _group_member(event: Event, f: Mapping[str, Any]) -> None:
    """Group membership change: the member is the user; the group stays in TargetUserName."""
    member = _text(f.get("MemberName"))
    if member and member.upper().startswith("CN="):
        member = member[3:].split(",", 1)[0].replace("\\", "") or member
    event.user = member or _text(f.get("MemberSid"))


def _lockout(event: Event, f: Mapping[str, Any]) -> None:
    event.user = _text(f.get("TargetUserName"))  # TargetDomainName is the caller computer here


def _kerberos(event: Event, f: Mapping[str, Any]) -> None:
    _target_user(event, f)
    event.src_ip = _ip(f.get("IpAddress"))
    event.src_port = as_port(f.get("IpPort"))
    event.outcome = _status_outcome(f.get("Status"))


def _ntlm(event: Event, f: Mapping[str, Any]) -> None:
    event.user = _text(f.get("TargetUserName"))
    event.outcome = _status_outcome(f.get("Status"))


def _share(event: Event, f: Mapping[str, Any]) -> None:
    _subject_user(event, f)
    event.src_ip = _ip(f.get("IpAddress"))
    event.src_port = as_port(f.get("IpPort"))
    event.file_path = _text(f.get("RelativeTargetName")) or _text(f.get("ShareName"))


def _wfp(event: Event, f: Mapping[str, Any]) -> None:
    event.src_ip = _ip(f.get("SourceAddress"))
    event.src_port = as_port(f.get("SourcePort"))
    event.dst_ip = _ip(f.get("DestAddress"))
    event.dst_port = as_port(f.get("DestPort"))
    protocol = _text(f.get("Protocol"))
    event.protocol = _IANA_PROTOCOLS.get(protocol, protocol) if protocol else None
    _process(event, f, "Application", "ProcessID")


def _wfp_permitted(event: Event, f: Mapping[str, Any]) -> None:
    _wfp(event, f)
    event.outcome = "success"


def _wfp_blocked(event: Event, f: Mapping[str, Any]) -> None:
    _wfp(event, f)
    event.outcome = "failure"


def _security_service_install(event: Event, f: Mapping[str, Any]) -> None:
    _subject_user(event, f)
    event.process_command_line = _text(f.get("ServiceFileName"))


def _registry_audit(event: Event, f: Mapping[str, Any]) -> None:
    _subject_user(event, f)
    _process(event, f, "ProcessName", "ProcessId")


#: Security EventID -> (Sigma category, action, entity handler).  Outcome comes from the
#: audit Keywords unless the handler sets it.
SECURITY_EVENTS: dict[int, tuple[str | None, str, Handler | None]] = {
    1102: (None, "log_cleared", _subject_user),
    4624: (None, "logon", _logon),
    4625: (None, "logon_failed", _logon_failed),
    4634: (None, "logoff", _target_user),
    4647: (None, "logoff", _target_user),
    4648: (None, "logon_explicit_credentials", _explicit_logon),
    4656: (None, "object_handle_request", _object_access),
    4657: (None, "registry_set", _registry_audit),
    4663: (None, "object_access", _object_access),
    4627: (None, "group_membership_info", _target_user),
    4658: (None, "object_handle_close", _security_process_end),
    4662: (None, "directory_object_access", _subject_user),
    4670: (None, "permissions_change", _object_access),
    4672: (None, "privileged_logon", _subject_user),
    4673: (None, "privileged_service_call", _security_process_end),
    4674: (None, "privileged_object_operation", _object_access),
    4690: (None, "handle_duplicate", _subject_user),
    4703: (None, "token_rights_adjusted", _subject_user),
    4688: ("process_creation", "process_start", _security_process_creation),
    4689: (None, "process_end", _security_process_end),
    4697: (None, "service_install", _security_service_install),
    4698: (None, "scheduled_task_create", _subject_user),
    4699: (None, "scheduled_task_delete", _subject_user),
    4700: (None, "scheduled_task_enable", _subject_user),
    4701: (None, "scheduled_task_disable", _subject_user),
    4702: (None, "scheduled_task_update", _subject_user),
    4720: (None, "account_created", _target_user),
    4722: (None, "account_enabled", _target_user),
    4723: (None, "password_change", _target_user),
    4724: (None, "password_reset", _target_user),
    4725: (None, "account_disabled", _target_user),
    4726: (None, "account_deleted", _target_user),
    4728: (None, "group_member_added", _group_member),
    4729: (None, "group_member_removed", _group_member),
    4732: (None, "group_member_added", _group_member),
    4733: (None, "group_member_removed", _group_member),
    4738: (None, "account_changed", _target_user),
    4740: (None, "account_locked_out", _lockout),
    4756: (None, "group_member_added", _group_member),
    4757: (None, "group_member_removed", _group_member),
    4767: (None, "account_unlocked", _target_user),
    4798: (None, "user_groups_enumerated", _subject_user),
    4799: (None, "group_membership_enumerated", _subject_user),
    4946: (None, "firewall_rule_add", None),
    4947: (None, "firewall_rule_change", None),
    4948: (None, "firewall_rule_delete", None),
    4768: (None, "kerberos_tgt_request", _kerberos),
    4769: (None, "kerberos_service_ticket_request", _kerberos),
    4771: (None, "kerberos_preauth_failed", _kerberos),
    4776: (None, "ntlm_authentication", _ntlm),
    5140: (None, "share_access", _share),
    5145: (None, "share_object_access", _share),
    5156: (None, "network_connection", _wfp_permitted),
    5157: (None, "network_connection_blocked", _wfp_blocked),
    5154: (None, "port_listen", _wfp),
    5158: (None, "port_bind", _wfp),
    5447: (None, "wfp_filter_change", None),
}


def _service_install(event: Event, f: Mapping[str, Any]) -> None:
    event.process_command_line = _text(f.get("ImagePath"))


#: System EventID -> (Sigma category, action, entity handler).
SYSTEM_EVENTS: dict[int, tuple[str | None, str, Handler | None]] = {
    104: (None, "log_cleared", _subject_user),
    7040: (None, "service_config_change", None),
    7045: (None, "service_install", _service_install),
}


def _ps_module(event: Event, f: Mapping[str, Any]) -> None:
    context = f.get("ContextInfo")
    event.process_command_line = _key_value_line(context, "Host Application = ")
    event.user, event.user_domain = _split_account(_key_value_line(context, "User = "))


def _ps_classic(event: Event, f: Mapping[str, Any]) -> None:
    data = f.get("Data")
    if type(data) is list:
        data = next((d for d in data if type(d) is str and "HostApplication=" in d), None)
    event.process_command_line = _key_value_line(data, "HostApplication=") or _key_value_line(
        f.get("Message"), "HostApplication="
    )


#: PowerShell Operational EventID -> (Sigma category, action, entity handler).
POWERSHELL_EVENTS: dict[int, tuple[str | None, str, Handler | None]] = {
    4103: ("ps_module", "powershell_module", _ps_module),
    4104: ("ps_script", "powershell_script", None),
}

#: "Windows PowerShell" (classic) EventID -> (Sigma category, action, entity handler).
POWERSHELL_CLASSIC_EVENTS: dict[int, tuple[str | None, str, Handler | None]] = {
    400: ("ps_classic_start", "powershell_engine_start", _ps_classic),
    403: (None, "powershell_engine_stop", _ps_classic),
    600: ("ps_classic_provider_start", "powershell_provider_start", _ps_classic),
    800: ("ps_classic_script", "powershell_pipeline", _ps_classic),
}

_EVENTS_BY_CHANNEL: dict[str, dict[int, tuple[str | None, str, Handler | None]]] = {
    SYSMON_CHANNEL: SYSMON_EVENTS,
    SECURITY_CHANNEL: SECURITY_EVENTS,
    SYSTEM_CHANNEL: SYSTEM_EVENTS,
    POWERSHELL_CHANNEL: POWERSHELL_EVENTS,
    POWERSHELL_CORE_CHANNEL: POWERSHELL_EVENTS,
    POWERSHELL_CLASSIC_CHANNEL: POWERSHELL_CLASSIC_EVENTS,
}


# ---------------------------------------------------------------------------
# Building the event from Sigma-named fields
# ---------------------------------------------------------------------------


def _normalize_system_ints(fields: dict[str, Any]) -> None:
    """Digit strings of the System numbers become ints (exporters write either)."""
    get = fields.get
    for key in _SYSTEM_INT_KEYS:
        value = get(key)
        if type(value) is str:
            if 0 < len(value) < 19 and value.isascii() and value.isdigit():  # the common case, as as_int reads it
                fields[key] = int(value)
                continue
            number = as_int(value)
            if number is not None:
                fields[key] = number


def _has_zone(value: Any) -> bool:
    """True unless ``value`` is timestamp text without a zone (a naive local time)."""
    if type(value) is not str:
        return True
    tail = value[10:]
    return value.endswith("Z") or "+" in tail or "-" in tail


def _event_time(fields: Mapping[str, Any]) -> datetime:
    """System time first (zone-aware TimeCreated or @timestamp), then Sysmon's UtcTime, then naive times.

    Naive local times (NXLog's ``EventTime``, some exports' ``TimeCreated``) carry no zone
    and are taken as UTC only when nothing better exists.
    """
    naive: datetime | None = None
    created = fields.get("TimeCreated")
    if created is not None and not _has_zone(created) and (fields.get("@timestamp") or fields.get("UtcTime")):
        created_naive, created = created, None  # a zone-aware time exists: try it before the naive one
    else:
        created_naive = None
    if created is not None:
        try:
            when = to_time(created)
        except ParseError:
            when = None
        if when is not None:
            if _has_zone(created):
                return when
            naive = when
    for key in ("@timestamp", "UtcTime"):
        value = fields.get(key)
        if value:
            try:
                return to_time(value)
            except ParseError:
                continue
    if naive is not None:
        return naive
    if created_naive is not None:
        try:
            return to_time(created_naive)
        except ParseError:
            pass
    value = fields.get("EventTime")
    if value:
        return to_time(value)
    raise ParseError("Windows event has no usable time (System/TimeCreated, @timestamp or UtcTime)")


#: channel -> (source_type, service), filled as channels are met.
_CHANNEL_NAMES: dict[str | None, tuple[str, str | None]] = {}


def build_windows_event(fields: dict[str, Any], source_format: str, message: str | None = None) -> Event:
    """Turn Sigma-named Windows ``fields`` into an :class:`Event` with entities and categories.

    ``fields`` must already carry the System names (``EventID``, ``Channel``, ``Computer``...).
    Raises :class:`ParseError` when the event has no EventID or no usable time.
    """
    _normalize_system_ints(fields)
    event_id = fields.get("EventID")
    if type(event_id) is not int:
        if event_id is None:
            raise ParseError("Windows event has no EventID")
        raise ParseError(f"Windows EventID is not a number: {str(event_id)[:40]!r}")
    time = _event_time(fields)
    channel = fields.get("Channel")
    if type(channel) is not str or not channel:
        channel = None
    computer = _text(fields.get("Computer"))
    names = _CHANNEL_NAMES.get(channel)
    if names is None:
        names = (
            (f"windows:{channel}", SERVICE_BY_CHANNEL.get(channel, channel.lower())) if channel else ("windows", None)
        )
        if len(_CHANNEL_NAMES) < 4096:
            _CHANNEL_NAMES[channel] = names
    event = Event(
        time=time,
        source_format=source_format,
        fields=fields,
        source_type=names[0],
        product="windows",
        service=names[1],
        event_code=str(event_id),
        host=computer,
        message=message,
    )
    record_id = fields.get("EventRecordID")
    if channel and computer and record_id is not None and record_id != "":
        event.natural_key = f"{channel}|{computer}|{record_id}"
    table = _EVENTS_BY_CHANNEL.get(channel) if channel else None
    spec = table.get(event_id) if table is not None else None
    if spec is not None:
        event.category, event.action, handler = spec
        if handler is not None:
            handler(event, fields)
    if event.outcome is None and channel == SECURITY_CHANNEL:
        event.outcome = _keyword_outcome(fields.get("Keywords"))
    return event


# ---------------------------------------------------------------------------
# EVTX / evtx_dump JSON ({"Event": {"System": ..., "EventData": ...}})
# ---------------------------------------------------------------------------


def _flatten_system(system: Mapping[str, Any], out: dict[str, Any]) -> None:
    """System children to Sigma names: plain values as is, attributes as ``<Element>_<attr>``."""
    for key, value in system.items():
        if value is None:
            continue
        if type(value) is not dict:
            check_container(value, 4)
            out[key] = value
            continue
        if key.endswith("_attributes"):  # evtx "separate_json_attributes" layout
            _system_attributes(key[:-11], value, out)
            continue
        for sub, item in value.items():
            if sub == "#attributes":
                if type(item) is dict:
                    _system_attributes(key, item, out)
            elif sub == "#text":
                check_container(item, 5)
                out[key] = item
            elif item is not None:
                check_container(item, 5)
                out[f"{key}_{sub}"] = item


def _system_attributes(element: str, attributes: Mapping[str, Any], out: dict[str, Any]) -> None:
    for name, item in attributes.items():
        if element == "TimeCreated" and name == "SystemTime":
            out["TimeCreated"] = item
        elif item is not None:
            check_container(item, 6)
            out[f"{element}_{name}"] = item


def _flatten_data(section: Any, out: dict[str, Any], reserved: Mapping[str, Any], depth: int) -> None:
    """EventData/UserData children to top level (trimmed); unnamed data to ``Data``."""
    if type(section) is not dict:
        if section is not None:
            out["Data"] = _trim(section, depth)
        return
    for key, value in section.items():
        if key == "#attributes" or key.endswith("_attributes"):
            continue
        if key == "#text":
            key = "Data"
        value = _trim(value, depth + 1)
        out[f"EventData_{key}" if key in reserved else key] = value


def _innermost(user_data: Any) -> Any:
    """Descend UserData's single-child wrapper elements to the element holding the values."""
    node = user_data
    for _level in range(MAX_NESTING):
        if type(node) is not dict:
            return node
        children = [k for k in node if k != "#attributes"]
        if len(children) != 1 or type(node[children[0]]) is not dict:
            return node
        inner = node[children[0]]
        if not any(k != "#attributes" for k in inner):  # an empty element: its parent holds the data
            return node
        node = inner
    raise ParseError(f"UserData nesting deeper than {MAX_NESTING} levels")


def fields_from_event_xml(event_obj: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    """Sigma-named fields (and a rendered message, if any) of one evtx-style ``Event`` object."""
    system = event_obj.get("System")
    if type(system) is not dict:
        raise ParseError("Windows event has no System section")
    fields: dict[str, Any] = {}
    _flatten_system(system, fields)
    reserved = dict(fields)
    message = None
    for section, value in event_obj.items():
        if section == "System" or section == "#attributes":
            continue
        if section == "EventData":
            _flatten_data(value, fields, reserved, 3)
        elif section == "UserData":
            _flatten_data(_innermost(value), fields, reserved, 4)
        else:  # RenderingInfo, ProcessingErrorData, DebugData, BinaryEventData: kept as is
            check_container(value, 2)
            fields[section] = value
            if section == "RenderingInfo" and type(value) is dict:
                message = first_line(value.get("Message"))
    return fields, message


def _event_object(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    event_obj = obj.get("Event")
    if type(event_obj) is dict:
        return event_obj
    if "System" in obj:  # exports that drop the Event wrapper
        return obj
    if event_obj is None:
        raise ParseError("not a Windows event: no top-level Event object")
    raise ParseError("not a Windows event: Event is not an object")


class EventXmlJsonParser:
    """Parser for JSON renderings of Windows event XML: "evtx" records and "winevent_json" exports."""

    def __init__(self, name: str) -> None:
        self.name = name

    def parse(self, record: RawRecord) -> Event:
        """Parse one ``{"Event": {"System": ..., "EventData"|"UserData": ...}}`` record.

        A Winlogbeat-style document met in the same stream (exports and HTTP batches mix
        the dialects) is read as Winlogbeat, with ``source_format`` saying so.
        """
        return self._event(load_json_object(record))

    def parse_batch(self, records: Sequence[RawRecord]) -> list[Event | Exception]:
        """Parse a block of records: for each, the event :meth:`parse` returns or the exception it raises."""
        return _parse_objects(self._event, records)

    def _event(self, obj: dict[str, Any]) -> Event:
        if "Event" not in obj and "System" not in obj and _is_winlogbeat(obj):
            return _winlogbeat_event(obj)
        fields, message = fields_from_event_xml(_event_object(obj))
        return build_windows_event(fields, self.name, message)

    def __repr__(self) -> str:
        return f"<parser {self.name}>"


def _parse_objects(build: Callable[[dict[str, Any]], Event], records: Sequence[RawRecord]) -> list[Event | Exception]:
    """Decode a block of records and build each event, keeping every failure in its record's place."""
    out: list[Event | Exception] = []
    append = out.append
    for obj in load_json_objects(records):
        if type(obj) is not dict:
            append(obj)  # the ParseError of an undecodable record
            continue
        try:
            append(build(obj))
        except Exception as exc:  # handed back: the pipeline dead-letters it with its reason
            append(exc)
    return out


# ---------------------------------------------------------------------------
# Winlogbeat: flat (OTRF/NXLog), ECS (winlog.*) and 5/6 (event_data, log_name...)
# ---------------------------------------------------------------------------

# Sigma System name <- dotted path inside the ``winlog`` object (ECS) or the document (5/6).
_ECS_SYSTEM = (
    ("EventID", "event_id"), ("Channel", "channel"), ("Computer", "computer_name"),
    ("Provider_Name", "provider_name"), ("Provider_Guid", "provider_guid"),
    ("EventRecordID", "record_id"), ("Version", "version"), ("Task", "task"), ("Opcode", "opcode"),
    ("Keywords", "keywords"), ("Execution_ProcessID", "process.pid"),
    ("Execution_ThreadID", "process.thread.id"), ("Security_UserID", "user.identifier"),
)  # fmt: skip
_LEGACY_SYSTEM = (
    ("EventID", "event_id"), ("Channel", "log_name"), ("Computer", "computer_name"),
    ("Provider_Name", "source_name"), ("Provider_Guid", "provider_guid"),
    ("EventRecordID", "record_number"), ("Version", "version"), ("Task", "task"), ("Opcode", "opcode"),
    ("Keywords", "keywords"), ("Execution_ProcessID", "process_id"), ("Execution_ThreadID", "thread_id"),
    ("Security_UserID", "user.identifier"),
)  # fmt: skip


def _nested_winlogbeat(obj: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """Fields of an ECS (``winlog``) or Winlogbeat 5/6 (``event_data``) document."""
    winlog = obj.get("winlog")
    if type(winlog) is dict:
        base, prefix, system = winlog, "winlog.", _ECS_SYSTEM
        rest = {k: v for k, v in obj.items() if k != "winlog"}
        rest["winlog"] = {k: v for k, v in winlog.items() if k not in ("event_data", "user_data")}
    else:
        base, prefix, system = obj, "", _LEGACY_SYSTEM
        rest = {k: v for k, v in obj.items() if k not in ("event_data", "user_data")}
    fields = flatten_object(rest)
    for sigma_name, path in system:
        value = fields.get(prefix + path)
        if value is not None:
            fields[sigma_name] = value
    if "EventID" not in fields:
        code = fields.get("event.code")
        if code is not None:
            fields["EventID"] = code
    reserved = {name: None for name, _path in system}
    _flatten_data(base.get("event_data"), fields, reserved, 3)
    user_data = base.get("user_data")
    if user_data is not None:
        _flatten_data(_innermost(user_data), fields, reserved, 3)
    return fields, first_line(obj.get("message"))


def _flat_winlogbeat(obj: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """Fields of a flat OTRF/NXLog document: values trimmed, Sigma aliases added.

    The document is used as the field mapping itself (it was just decoded for this event);
    only values that need trimming or a nesting check are touched.
    """
    fields = obj
    whitespace = _WHITESPACE
    for key, value in obj.items():
        kind = type(value)
        if kind is str:
            if value[-1:] in whitespace:
                fields[key] = value.rstrip()
        elif kind is dict or kind is list:
            fields[key] = _trim(value, 2)
    if "Computer" not in fields:
        host = fields.get("Hostname")
        if host is not None:
            fields["Computer"] = host
    if "Provider_Name" not in fields:
        provider = fields.get("SourceName", fields.get("ProviderName"))
        if provider is not None:
            fields["Provider_Name"] = provider
    if "EventRecordID" not in fields:
        record_id = fields.get("RecordNumber")
        if record_id is not None:
            fields["EventRecordID"] = record_id
    return fields, first_line(fields.get("Message"))


class WinlogbeatParser:
    """Parser for Winlogbeat-shipped Windows events ("winlogbeat_json"): flat, ECS or 5/6 dialect."""

    name = "winlogbeat_json"

    def parse(self, record: RawRecord) -> Event:
        """Parse one Winlogbeat JSON document into a Windows event with Sigma-named fields.

        An evtx_dump-style ``{"Event": ...}`` object met in the same stream is read as
        such, with ``source_format`` "winevent_json".
        """
        return self._event(load_json_object(record))

    def parse_batch(self, records: Sequence[RawRecord]) -> list[Event | Exception]:
        """Parse a block of records: for each, the event :meth:`parse` returns or the exception it raises."""
        return _parse_objects(self._event, records)

    @staticmethod
    def _event(obj: dict[str, Any]) -> Event:
        if _is_winlogbeat(obj):
            return _winlogbeat_event(obj)
        if type(obj.get("Event")) is dict:
            fields, message = fields_from_event_xml(_event_object(obj))
            return build_windows_event(fields, "winevent_json", message)
        raise ParseError("not a Winlogbeat Windows event: no winlog object, event_data or EventID")


def _is_winlogbeat(obj: dict[str, Any]) -> bool:
    """True for a document in one of the Winlogbeat dialects (flat, ECS ``winlog``, 5/6)."""
    return (
        type(obj.get("winlog")) is dict
        or type(obj.get("event_data")) is dict
        or "log_name" in obj
        or ("EventID" in obj)
    )


def _winlogbeat_event(obj: dict[str, Any]) -> Event:
    if type(obj.get("winlog")) is dict or type(obj.get("event_data")) is dict or "log_name" in obj:
        fields, message = _nested_winlogbeat(obj)
    else:
        fields, message = _flat_winlogbeat(obj)
    return build_windows_event(fields, "winlogbeat_json", message)


register(EventXmlJsonParser("evtx"))
register(EventXmlJsonParser("winevent_json"))
register(WinlogbeatParser())
