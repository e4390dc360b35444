"""Suricata EVE JSON parser ("suricata_eve"): alerts, flows, DNS, HTTP, TLS, files, anomalies, any event_type.

``fields`` is the EVE record flattened with dotted keys, the names Sigma and analysts use
(``alert.signature``, ``dns.rrname``, ``http.http_user_agent``, ``flow.bytes_toserver``...);
lists stay lists.

Conventions the network analytics build on: ``product`` is ``suricata``, ``service`` is
the ``event_type``, ``source_type`` is ``suricata:<event_type>``.  Entities: the 4-tuple
from ``src_ip``/``src_port``/``dest_ip``/``dest_port``, ``proto`` lower-cased,
``bytes_out``/``bytes_in`` from ``flow.bytes_toserver``/``flow.bytes_toclient`` (the
client's point of view), ``domain`` from the DNS name, HTTP host or TLS SNI, ``url`` and
``user_agent`` of HTTP, file name and hashes of ``fileinfo``, and ``host`` from the
sensor name EVE writes in ``host``.  For alerts ``event_code`` is the signature id,
``message`` the signature, ``action`` and ``outcome`` the sensor's verdict
(``allowed`` -> success, ``blocked`` -> failure); for other events ``event_code`` and
``action`` are the event type.  EVE has no globally unique record id (``flow_id`` is
shared by every event of a flow), so the event id comes from the exact record bytes.
"""

from __future__ import annotations

from typing import Any

from openmdr.models import Event, ParseError, RawRecord
from openmdr.normalize.base import register
from openmdr.normalize.parsers.jsonlines import (
    as_int,
    as_ip,
    as_port,
    first_line,
    flatten_object,
    load_json_object,
    to_time,
)


def _text(value: Any) -> str | None:
    return value if type(value) is str and value else None


def _hostname(value: str | None) -> str | None:
    """A host name for ``domain``: IP literals and ports are not domains."""
    if value is None:
        return None
    host = value.rsplit(":", 1)[0] if value.count(":") == 1 else value
    return None if as_ip(host) else host


class SuricataEveParser:
    """Parser for one Suricata EVE JSON record."""

    name = "suricata_eve"

    def parse(self, record: RawRecord) -> Event:
        """Parse one EVE object (any ``event_type``) into an event."""
        obj = load_json_object(record)
        kind = obj.get("event_type")
        if type(kind) is not str or not kind:
            raise ParseError("not a Suricata EVE record: no event_type")
        stamp = obj.get("timestamp")
        if stamp is None:
            raise ParseError("Suricata EVE record has no timestamp")
        time = to_time(stamp)
        fields = flatten_object(obj)
        get = fields.get
        hostname = _text(get("http.hostname"))
        url = _text(get("http.url"))
        if url and hostname and url.startswith("/"):
            url = f"http://{hostname}{url}"
        domain = _hostname(_text(get("dns.rrname")) or _text(get("dns.query.0.rrname")) or hostname
                           or _text(get("tls.sni")))  # fmt: skip
        event = Event(
            time=time,
            source_format=self.name,
            fields=fields,
            source_type=f"suricata:{kind}",
            product="suricata",
            service=kind,
            event_code=kind,
            action=kind,
            host=_text(get("host")),
            src_ip=as_ip(get("src_ip")),
            src_port=as_port(get("src_port")),
            dst_ip=as_ip(get("dest_ip")),
            dst_port=as_port(get("dest_port")),
            protocol=(_text(get("proto")) or "").lower() or None,
            bytes_out=as_int(get("flow.bytes_toserver")),
            bytes_in=as_int(get("flow.bytes_toclient")),
            domain=domain,
            url=url,
            user_agent=_text(get("http.http_user_agent")),
            file_path=_text(get("fileinfo.filename")),
            hash_md5=_text(get("fileinfo.md5")),
            hash_sha1=_text(get("fileinfo.sha1")),
            hash_sha256=_text(get("fileinfo.sha256")),
        )
        if kind == "alert":
            signature_id = as_int(get("alert.signature_id"))
            event.event_code = str(signature_id) if signature_id is not None else kind
            event.message = first_line(get("alert.signature"))
            event.category = _text(get("alert.category"))
            verdict = _text(get("alert.action"))
            if verdict:
                event.action = verdict
                event.outcome = "failure" if verdict == "blocked" else "success"
        elif kind == "anomaly":
            event.message = _text(get("anomaly.event")) or _text(get("anomaly.type"))
        return event


register(SuricataEveParser())
