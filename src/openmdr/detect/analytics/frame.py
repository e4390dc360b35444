"""Columnar views of events that the analytics read: connections, DNS queries, identity.

Analytics never loop over lake rows in Python.  :class:`Extractor` turns a batch in the
lake's :data:`~openmdr.models.event.EVENT_SCHEMA` layout into small Arrow tables with
only the columns an analytic needs, using one DuckDB query per view (the source's own
fields are read out of the ``fields`` JSON column inside DuckDB, vectorised).

Which rows are what (documented in docs/analytics.md):

* a **connection** is a Zeek ``conn`` record, a Suricata ``flow``/``netflow`` record, or a
  CEF/LEEF firewall record with both addresses.  Endpoint network events (Sysmon 3) are
  not connections here: they would count every connection Zeek also saw twice.
* a **failed** connection never got an answer or was refused: Zeek ``conn_state`` S0,
  REJ, RSTOS0, RSTRH, SH; Suricata flows with no packet to the client, or TCP flows whose
  server side sent RST without SYN; firewall records whose action/outcome is a deny.
* a Suricata flow record is placed at its ``flow.start`` (the record's own timestamp is when
  it was written, which for replayed captures can be one instant for all flows).
* a **DNS query** is a Zeek ``dns`` record or a Suricata ``dns`` query record, with the
  queried name in ``domain``.
* a **server name** row (Zeek ``ssl``/``http``, Suricata ``tls``/``http`` with a ``domain``)
  ties a destination address to the names clients asked it for (TLS SNI, HTTP Host).
* a **non-existent domain** answer is a Zeek ``dns`` record with ``rcode_name`` NXDOMAIN or a
  Suricata ``dns`` answer record with ``rcode`` NXDOMAIN (Suricata's other answers are skipped:
  their queries are already counted).
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Sequence
from functools import lru_cache

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from openmdr.models.event import EVENT_SCHEMA, Event, events_to_table

KIND_CONN = 1
KIND_DNS = 2
#: A server name seen for a destination address (Zeek ssl/http, Suricata tls/http): used
#: to name destinations in alerts and to match domain allow-lists, never counted as traffic.
KIND_NAME = 3
#: A DNS answer that says the name does not exist (Suricata logs answers as records of
#: their own; a Zeek ``dns`` row carries its ``rcode_name`` instead).
KIND_NXDOMAIN = 4

#: Columns of a connection/DNS view (one row per connection or query).
NET_SCHEMA = pa.schema(
    [
        ("ts", pa.float64()),
        ("event_id", pa.string()),
        ("kind", pa.int8()),
        ("src", pa.string()),
        ("dst", pa.string()),
        ("sport", pa.int32()),
        ("dport", pa.int32()),
        ("proto", pa.string()),
        ("bytes_out", pa.int64()),
        ("bytes_in", pa.int64()),
        ("duration", pa.float64()),
        ("failed", pa.bool_()),
        ("src_internal", pa.bool_()),
        ("dst_internal", pa.bool_()),
        ("domain", pa.string()),
        ("qtype", pa.string()),
        ("rcode", pa.string()),
        ("asset_class", pa.string()),
        ("asset_has_edr", pa.bool_()),
    ]
)

#: Columns of an identity view (logons, group changes, file access).
IDENTITY_SCHEMA = pa.schema(
    [
        ("ts", pa.float64()),
        ("event_id", pa.string()),
        ("kind", pa.string()),
        ("failed", pa.bool_()),
        ("event_code", pa.string()),
        ("user", pa.string()),
        ("host", pa.string()),
        ("src_ip", pa.string()),
        ("src_internal", pa.bool_()),
        ("src_country", pa.string()),
        ("src_lat", pa.float64()),
        ("src_lon", pa.float64()),
        ("logon_type", pa.string()),
        ("group_name", pa.string()),
        ("member", pa.string()),
        ("actor", pa.string()),
        ("product", pa.string()),
    ]
)

_DENY = "('deny','denied','drop','dropped','block','blocked','reject','rejected','refused','failure','fail','failed')"


def _fld(key: str) -> str:
    return f"json_extract_string(fields, '$.\"{key}\"')"


_LOGON_ACTIONS = (
    "('logon','login','logged_in','authentication','auth','vpn_login','vpn-login','signin','sign_in',"
    "'consolelogin','logon_failed','login_failed','authentication_failed','auth_failed','logon_failure')"
)

_NET_SQL = f"""
WITH clean AS (
  SELECT * REPLACE (CASE WHEN json_valid(fields) THEN fields END AS fields) FROM batch
), base AS (
  SELECT
    CASE WHEN product = 'suricata' AND service IN ('flow', 'netflow') THEN COALESCE(
      epoch(TRY_CAST({_fld("flow.start")} AS TIMESTAMPTZ)), epoch_us("time") / 1e6)
      ELSE epoch_us("time") / 1e6 END AS ts,
    event_id, product, service, source_format, action, outcome,
    src_ip, dst_ip, src_port, dst_port, lower(protocol) AS proto, bytes_in, bytes_out, domain,
    src_internal, dst_internal, asset_class, asset_has_edr, fields,
    CASE
      WHEN product = 'zeek' AND service = 'conn' THEN {KIND_CONN}
      WHEN product = 'suricata' AND service IN ('flow', 'netflow') THEN {KIND_CONN}
      -- firewall traffic records; the same devices' VPN logins and tunnel events are not connections
      WHEN source_format IN ('cef', 'leef') AND src_ip IS NOT NULL AND dst_ip IS NOT NULL
           AND lower(COALESCE(action, '')) NOT IN {_LOGON_ACTIONS}
           AND lower(COALESCE(action, '')) NOT LIKE '%login%'
           AND lower(COALESCE(action, '')) NOT LIKE 'tunnel%' THEN {KIND_CONN}
      WHEN product = 'zeek' AND service = 'dns' AND domain IS NOT NULL THEN {KIND_DNS}
      WHEN product = 'zeek' AND service IN ('ssl', 'http') AND domain IS NOT NULL THEN {KIND_NAME}
      WHEN product = 'suricata' AND service IN ('tls', 'http') AND domain IS NOT NULL THEN {KIND_NAME}
      WHEN product = 'suricata' AND service = 'dns' AND domain IS NOT NULL THEN CASE
        WHEN COALESCE({_fld("dns.type")}, 'query') = 'query' THEN {KIND_DNS}
        WHEN upper({_fld("dns.rcode")}) = 'NXDOMAIN' THEN {KIND_NXDOMAIN}
        ELSE 0 END
      WHEN product IS NULL AND src_ip IS NOT NULL AND dst_ip IS NOT NULL
           AND json_exists(fields, '$.conn_state') THEN {KIND_CONN}
      ELSE 0
    END AS kind
  FROM clean
)
SELECT
  ts, event_id, CAST(kind AS TINYINT) AS kind, src_ip AS src, dst_ip AS dst,
  CAST(COALESCE(src_port, -1) AS INTEGER) AS sport, CAST(COALESCE(dst_port, -1) AS INTEGER) AS dport,
  COALESCE(proto, '') AS proto,
  CAST(COALESCE(bytes_out, 0) AS BIGINT) AS bytes_out, CAST(COALESCE(bytes_in, 0) AS BIGINT) AS bytes_in,
  CASE WHEN kind = {KIND_CONN} THEN COALESCE(
    TRY_CAST({_fld("duration")} AS DOUBLE),
    epoch(TRY_CAST({_fld("flow.end")} AS TIMESTAMPTZ)) - epoch(TRY_CAST({_fld("flow.start")} AS TIMESTAMPTZ)),
    TRY_CAST({_fld("flow.age")} AS DOUBLE)) END AS duration,
  CASE
    WHEN kind <> {KIND_CONN} THEN false
    WHEN {_fld("conn_state")} IS NOT NULL THEN {_fld("conn_state")} IN ('S0', 'REJ', 'RSTOS0', 'RSTRH', 'SH')
    WHEN product = 'suricata' THEN COALESCE(
      TRY_CAST({_fld("flow.pkts_toclient")} AS BIGINT) = 0
      OR (COALESCE(proto, '') = 'tcp'
          AND (TRY_CAST('0x' || {_fld("tcp.tcp_flags_tc")} AS INTEGER) & 4) <> 0
          AND (TRY_CAST('0x' || {_fld("tcp.tcp_flags_tc")} AS INTEGER) & 2) = 0), false)
    ELSE COALESCE(lower(action) IN {_DENY} OR lower(outcome) IN {_DENY}, false)
  END AS failed,
  src_internal, dst_internal,
  CASE WHEN kind IN ({KIND_DNS}, {KIND_NAME}, {KIND_NXDOMAIN}) THEN lower(rtrim(domain, '.')) END AS domain,
  CASE WHEN kind = {KIND_DNS} THEN upper(COALESCE({_fld("qtype_name")}, {_fld("dns.rrtype")})) END AS qtype,
  CASE WHEN kind = {KIND_NXDOMAIN} THEN 'NXDOMAIN'
       WHEN kind = {KIND_DNS} THEN upper({_fld("rcode_name")}) END AS rcode,
  asset_class, asset_has_edr
FROM base
WHERE kind > 0
  AND (kind IN ({KIND_DNS}, {KIND_NXDOMAIN}) OR (src_ip IS NOT NULL AND dst_ip IS NOT NULL))
"""


#: Linux ``usermod -aG``: "add 'bob' to group 'sudo'" (and "to shadow group"); groups 1 and 2
#: are the member and the group.
_LINUX_GROUP_ADD = r"add '([^']+)' to (?:shadow )?group '([^']+)'"
#: ``gpasswd -a``: "user bob added by root to group sudo".
_GPASSWD_ADD = r"user (\S+) added by \S+ to group (\S+)"


def _sql_literal(text: str) -> str:
    """``text`` as a SQL string literal (quotes doubled; backslashes are literal in DuckDB)."""
    return "'" + text.replace("'", "''") + "'"


_IDENTITY_SQL = f"""
WITH clean AS (
  SELECT * REPLACE (CASE WHEN json_valid(fields) THEN fields END AS fields) FROM batch
), base AS (
  SELECT
    epoch_us("time") / 1e6 AS ts, event_id, lower(COALESCE(action, '')) AS act,
    lower(COALESCE(outcome, '')) AS oc, COALESCE(event_code, '') AS code, category, service, product,
    "user", host, src_ip, src_internal, src_country, src_lat, src_lon, fields,
    CASE WHEN service IN ('usermod', 'gpasswd') THEN COALESCE(
      NULLIF(regexp_extract(message, {_sql_literal(_LINUX_GROUP_ADD)}, 2), ''),
      NULLIF(regexp_extract(message, {_sql_literal(_GPASSWD_ADD)}, 2), '')) END AS linux_group,
    CASE WHEN service IN ('usermod', 'gpasswd') THEN COALESCE(
      NULLIF(regexp_extract(message, {_sql_literal(_LINUX_GROUP_ADD)}, 1), ''),
      NULLIF(regexp_extract(message, {_sql_literal(_GPASSWD_ADD)}, 1), ''))
      WHEN service = 'useradd' THEN NULLIF(regexp_extract(message, '^new user: name=([^,]+)', 1), '')
    END AS linux_member
  FROM clean
), typed AS (
  SELECT *,
    CASE
      WHEN code IN ('4634', '4647', '4648', '4672') THEN NULL
      WHEN act IN ('group_member_added', 'member_added', 'user_added_to_group') OR linux_group IS NOT NULL
           THEN 'group_add'
      WHEN act IN ('user_added', 'account_created', 'user_created') OR code = '4720'
           OR (service = 'useradd' AND linux_member IS NOT NULL) THEN 'user_add'
      WHEN code IN ('5145', '4663') OR (category = 'file_event' AND product = 'windows')
           OR act IN ('file_access', 'share_access', 'file_read') THEN 'file'
      WHEN code IN ('4768', '4776', '4771') OR act IN ('sudo_command', 'sudo_failed', 'su_failed')
           THEN 'credential'
      WHEN code IN ('4624', '4625') OR act IN {_LOGON_ACTIONS} THEN 'logon'
      -- cloud audit logs name API calls after logins (GetLoginProfile): only ConsoleLogin is one
      WHEN product IS DISTINCT FROM 'aws' AND (act LIKE '%login%' OR act LIKE '%logon%') THEN 'logon'
      ELSE NULL
    END AS kind
  FROM base
)
SELECT
  ts, event_id, kind,
  (code IN ('4625', '4771') OR act LIKE '%fail%' OR oc IN ('failure', 'failed', 'fail', 'denied')
   OR (code IN ('4768', '4776') AND lower(COALESCE({_fld("Status")}, '0x0')) NOT IN ('0x0', '0'))) AS failed,
  code AS event_code, lower("user") AS "user", lower(host) AS host, src_ip, src_internal,
  src_country, src_lat, src_lon,
  {_fld("LogonType")} AS logon_type,
  COALESCE(linux_group, {_fld("TargetUserName")}, {_fld("GroupName")}, {_fld("group")}, {_fld("Group")})
    AS group_name,
  COALESCE(linux_member, NULLIF(regexp_extract({_fld("MemberName")}, '^CN=([^,]+)', 1), ''),
           {_fld("MemberName")}, {_fld("member")}, {_fld("MemberSid")}, "user") AS member,
  COALESCE({_fld("SubjectUserName")}, {_fld("actor")}) AS actor,
  product
FROM typed
WHERE kind IS NOT NULL
ORDER BY ts
"""


class Extractor:
    """Builds the analytics' columnar views from event batches (one DuckDB connection per thread)."""

    def __init__(self, threads: int | None = 1) -> None:
        self.threads = threads
        self._local = threading.local()

    def _connection(self) -> duckdb.DuckDBPyConnection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = duckdb.connect()
            if self.threads:
                con.execute(f"SET threads TO {int(self.threads)}")
            self._local.con = con
        return con

    def _run(self, sql: str, batch: pa.Table, schema: pa.Schema) -> pa.Table:
        con = self._connection()
        con.register("batch", batch)
        try:
            result = con.sql(sql).to_arrow_table()
        finally:
            con.unregister("batch")
        return result.cast(schema)

    def views_by_tenant(self, batch: pa.Table | Sequence[Event]) -> list[tuple[str, pa.Table, pa.Table]]:
        """``(tenant, identity view, network view)`` of a batch of any number of tenants.

        Each view is extracted with ONE query over the whole batch (DuckDB's per-query cost
        dominates small streaming batches), tagged with the row's tenant, and split afterwards.
        """
        table = as_table(batch)
        if table.num_rows == 0:
            return []
        tenants = pc.unique(table.column("tenant")).to_pylist()
        if len(tenants) == 1:
            return [(tenants[0] or "", self.identity(table), self.network(table))]
        identity = self._run_tagged(_IDENTITY_SQL, table)
        network = self._run_tagged(_NET_SQL, table)
        out: list[tuple[str, pa.Table, pa.Table]] = []
        for tenant in tenants:
            ident = identity.filter(pc.equal(identity.column("_tenant"), tenant)).drop_columns(["_tenant"])
            net = network.filter(pc.equal(network.column("_tenant"), tenant)).drop_columns(["_tenant"])
            out.append((tenant or "", ident.cast(IDENTITY_SCHEMA), fill_internal(net.cast(NET_SCHEMA))))
        return out

    def _run_tagged(self, sql: str, batch: pa.Table) -> pa.Table:
        con = self._connection()
        con.register("batch", batch)
        try:
            tagged = (
                f"WITH v AS ({sql}) SELECT b.tenant AS _tenant, v.* FROM v JOIN batch b USING (event_id) "
                "ORDER BY v.ts, v.event_id"
            )
            return con.sql(tagged).to_arrow_table()
        finally:
            con.unregister("batch")

    def network(self, batch: pa.Table | Sequence[Event]) -> pa.Table:
        """Connections and DNS queries of ``batch`` in :data:`NET_SCHEMA` layout."""
        table = as_table(batch)
        if table.num_rows == 0:
            return NET_SCHEMA.empty_table()
        out = self._run(_NET_SQL, table, NET_SCHEMA)
        return fill_internal(out)

    def identity(self, batch: pa.Table | Sequence[Event]) -> pa.Table:
        """Logons, credential checks, account/group changes and file access, time-ordered."""
        table = as_table(batch)
        if table.num_rows == 0:
            return IDENTITY_SCHEMA.empty_table()
        return self._run(_IDENTITY_SQL, table, IDENTITY_SCHEMA)


def as_table(batch: pa.Table | Sequence[Event]) -> pa.Table:
    """``batch`` as an Arrow table in lake layout (events are converted once)."""
    if isinstance(batch, pa.Table):
        return batch
    return events_to_table(list(batch)) if batch else EVENT_SCHEMA.empty_table()


@lru_cache(maxsize=100_000)
def is_internal_address(ip: str) -> bool | None:
    """Fallback when enrichment did not run: not globally routable counts as internal."""
    try:
        return not ipaddress.ip_address(ip).is_global
    except ValueError:
        return None


@lru_cache(maxsize=100_000)
def is_host_address(ip: str) -> bool:
    """False for addresses that are not one machine (multicast, broadcast, unspecified)."""
    parts = ip.split(".")
    if len(parts) == 4 and all(p.isdigit() and len(p) <= 3 and (p == "0" or p[0] != "0") for p in parts):
        octets = [int(p) for p in parts]
        if max(octets) <= 255:  # a dotted quad: decided without ipaddress parsing (hot path)
            first = octets[0]
            unspecified = not any(octets)
            return not (unspecified or first == 127 or 224 <= first <= 239 or octets[3] == 255)
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if addr.is_multicast or addr.is_unspecified or addr.is_loopback:
        return False
    return not (addr.version == 4 and (str(addr).endswith(".255") or str(addr) == "255.255.255.255"))


def fill_internal(table: pa.Table) -> pa.Table:
    """Fill missing ``src_internal``/``dst_internal`` from the address class (once per distinct address)."""
    for name, addr in (("src_internal", "src"), ("dst_internal", "dst")):
        col = table.column(name)
        if col.null_count == 0:
            continue
        encoded = pc.dictionary_encode(table.column(addr)).combine_chunks()
        flags = pa.array([is_internal_address(a) for a in encoded.dictionary.to_pylist()], type=pa.bool_())
        derived = flags.take(encoded.indices)
        filled = pc.coalesce(col.combine_chunks(), derived)
        table = table.set_column(table.schema.get_field_index(name), name, filled)
    return table
