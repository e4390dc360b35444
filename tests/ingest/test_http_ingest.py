"""The HTTP ingest endpoint: token -> tenant, body shapes, limits and malformed input."""

from __future__ import annotations

import gzip
import json

import orjson
import pytest
from fastapi.testclient import TestClient

from openmdr.api.ingest import create_ingest_app
from openmdr.models import RawRecord, Rejection
from tests.ingest.sinks import CollectingSink

TOKENS = {"s3cret-acme": "acme", "s3cret-globex": "globex"}
LIMIT = 64 * 1024
URL = "/api/v1/ingest"


@pytest.fixture()
def sink() -> CollectingSink:
    return CollectingSink()


@pytest.fixture()
def client(sink: CollectingSink) -> TestClient:
    return TestClient(create_ingest_app(sink, TOKENS.get, max_batch_bytes=LIMIT))


def _auth(token: str = "s3cret-acme") -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


WINLOG = {"Channel": "Security", "EventID": 4625, "Hostname": "dc1", "@timestamp": "2026-03-02T10:00:00Z"}
EVE = {"timestamp": "2026-03-02T10:00:00+0000", "flow_id": 1, "event_type": "alert", "src_ip": "203.0.113.5"}
GENERIC = {"@timestamp": "2026-03-02T10:00:00Z", "host": "app-1", "msg": "login ok"}


def test_json_array_token_decides_tenant_and_payload_tenant_is_ignored(
    client: TestClient, sink: CollectingSink
) -> None:
    body = json.dumps([{**WINLOG, "tenant": "globex"}, EVE, GENERIC], indent=1).encode()
    r = client.post(URL, content=body, headers={**_auth(), "Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.json() == {"received": 3, "stored": 3, "duplicates": 0, "rejected": 0, "rejections": []}
    ((tenant, items),) = sink.calls
    assert tenant == "acme"
    assert [i.format for i in items] == ["winlogbeat_json", "suricata_eve", "json"]
    assert [orjson.loads(i.payload) for i in items] == [{**WINLOG, "tenant": "globex"}, EVE, GENERIC]
    assert all(body.find(i.payload) >= 0 for i in items)  # exact bytes of each element
    assert items[0].origin == "http acme testclient"
    assert items[0].context["transport"] == "http"


def test_single_object_and_forced_format(client: TestClient, sink: CollectingSink) -> None:
    r = client.post(URL + "?format=json", content=orjson.dumps(WINLOG), headers=_auth("s3cret-globex"))
    assert r.status_code == 200 and r.json()["received"] == 1
    assert sink.calls[0][0] == "globex" and sink.calls[0][1][0].format == "json"
    r = client.post(URL + "?format=no_such_parser", content=b"{}", headers=_auth())
    assert r.status_code == 400 and "unknown format" in r.json()["detail"]


BAD_AUTH = [
    {},
    {"Authorization": "Bearer wrong"},
    {"Authorization": "Basic s3cret-acme"},
    {"Authorization": "Bearer "},
]


@pytest.mark.parametrize("headers", BAD_AUTH)
def test_missing_or_unknown_token_is_401_without_detail(
    client: TestClient, sink: CollectingSink, headers: dict[str, str]
) -> None:
    r = client.post(URL, content=orjson.dumps([GENERIC]), headers=headers)
    assert r.status_code == 401
    assert r.json() == {"detail": "missing or invalid ingest token"}
    assert r.headers["www-authenticate"] == "Bearer"
    assert sink.calls == []
    assert client.app.state.ingest_stats.unauthorized == 1


def test_body_over_limit_is_413_and_counted(client: TestClient, sink: CollectingSink) -> None:
    body = orjson.dumps([GENERIC] * 2000)
    assert len(body) > LIMIT
    r = client.post(URL, content=body, headers=_auth())
    assert r.status_code == 413 and str(LIMIT) in r.json()["detail"]

    def chunked():  # no Content-Length: the limit is enforced while reading
        for _ in range(100):
            yield b" " * 1024

    r = client.post(URL, content=chunked(), headers=_auth())
    assert r.status_code == 413
    bomb = gzip.compress(b"[" + b" " * (LIMIT * 4) + b"]")
    r = client.post(URL, content=bomb, headers={**_auth(), "Content-Encoding": "gzip"})
    assert r.status_code == 413 and "after decompression" in r.json()["detail"]
    assert client.app.state.ingest_stats.too_large == 3
    assert sink.calls == []


def test_malformed_json_body_is_kept_as_one_dead_letter_and_400(client: TestClient, sink: CollectingSink) -> None:
    body = b'[{"a": 1}, {"b": '
    r = client.post(URL, content=body, headers={**_auth(), "Content-Type": "application/json"})
    assert r.status_code == 400
    answer = r.json()
    assert answer["detail"].startswith("malformed JSON body") and answer["rejected"] == 1
    ((tenant, (letter,)),) = sink.calls
    assert tenant == "acme" and isinstance(letter, Rejection)
    assert letter.payload == body and letter.reason.startswith("malformed JSON body")
    r = client.post(URL, content=b'"just a string"', headers=_auth())
    assert r.status_code == 400 and "object or an array" in r.json()["detail"]


def test_ndjson_with_per_line_detection_and_bad_lines(client: TestClient, sink: CollectingSink) -> None:
    lines = [orjson.dumps(WINLOG), b"", orjson.dumps(EVE), b'{"broken": ', orjson.dumps(GENERIC) + b"\r"]
    r = client.post(URL, content=b"\n".join(lines), headers={**_auth(), "Content-Type": "application/x-ndjson"})
    assert r.status_code == 200
    assert r.json()["received"] == 4
    items = sink.calls[0][1]
    assert [i.format for i in items] == ["winlogbeat_json", "suricata_eve", "json", "json"]
    assert items[3].payload == orjson.dumps(GENERIC)


def test_gzip_ndjson(client: TestClient, sink: CollectingSink) -> None:
    body = gzip.compress(b"\n".join(orjson.dumps({**GENERIC, "n": i}) for i in range(500)))
    headers = {**_auth(), "Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"}
    r = client.post(URL, content=body, headers=headers)
    assert r.status_code == 200 and r.json()["received"] == 500
    r = client.post(URL, content=body[:-20], headers=headers)
    assert r.status_code == 400 and "truncated gzip" in r.json()["detail"]
    r = client.post(URL, content=b"not gzip at all", headers={**_auth(), "Content-Encoding": "gzip"})
    assert r.status_code == 400 and "malformed gzip" in r.json()["detail"]
    r = client.post(URL, content=body, headers={**_auth(), "Content-Encoding": "br"})
    assert r.status_code == 415


def test_text_lines_syslog_cef_leef(client: TestClient, sink: CollectingSink) -> None:
    body = (
        b"<38>Mar  2 10:00:01 bastion sshd[1]: Failed password for root from 203.0.113.50\n"
        b"<134>Mar  2 10:00:02 fw01 CEF:0|Acme|EdgeWall|4.2|100|Blocked|7|src=203.0.113.9\r\n"
        b"LEEF:2.0|Acme|Gate|2.1|login|^|src=198.51.100.8\n\n"
    )
    r = client.post(URL, content=body, headers={**_auth(), "Content-Type": "text/plain; charset=utf-8"})
    assert r.status_code == 200 and r.json()["received"] == 3
    assert [i.format for i in sink.calls[0][1]] == ["syslog", "cef", "leef"]


def test_oversized_and_scalar_elements_are_rejections(client: TestClient, sink: CollectingSink) -> None:
    from openmdr.normalize.base import MAX_RECORD_BYTES

    app = create_ingest_app(sink, TOKENS.get, max_batch_bytes=MAX_RECORD_BYTES * 3)
    big = {"blob": "A" * (MAX_RECORD_BYTES + 5)}
    r = TestClient(app).post(URL, content=orjson.dumps([GENERIC, big, 7, "x", GENERIC]), headers=_auth())
    assert r.status_code == 200
    answer = r.json()
    assert answer["received"] == 5 and answer["rejected"] == 3
    assert any(x.startswith("oversized record") for x in answer["rejections"])
    assert "array element is not a JSON object" in answer["rejections"]
    items = sink.calls[0][1]
    assert [type(i) for i in items] == [RawRecord, Rejection, Rejection, Rejection, RawRecord]


def test_integers_beyond_64_bits_are_valid_json(client: TestClient, sink: CollectingSink) -> None:
    body = b'[{"@timestamp": "2026-03-02T10:00:00Z", "big": 123456789012345678901234567890}]'
    r = client.post(URL, content=body, headers=_auth())
    assert r.status_code == 200 and r.json()["received"] == 1
    assert sink.calls[0][1][0].payload == body[1:-1]


def test_unsupported_content_type_is_415(client: TestClient) -> None:
    r = client.post(URL, content=b"a,b,c", headers={**_auth(), "Content-Type": "text/csv"})
    assert r.status_code == 415
