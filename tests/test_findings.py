"""One regression test per finding of issue 12 ("Private stays private"), each of which
failed on the code before the fix. In-process against a small world (``world``), or over
real HTTP against the ``hikitsugi serve`` of the sample home (``server``) where the
finding lives in the real server (its access log, uvicorn's proxy handling).

World: customer C701 株式会社テスト物流 (contact 石原 修, commitment reason 「過去の遅延の
お詫び」 approved by 山口 和彦), its notes (one without any personal data), a case written
with a phone number right after a date; keys: admin, an agent and a lead in charge of
C701, an agent and a lead in charge of nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import stat
import time

import httpx
import pytest
import yaml

pytestmark = pytest.mark.slow

H = lambda key: {"X-API-Key": key}  # noqa: E731
PRIVATE_NOTE = "棚卸しの前日は倉庫の搬入口を空けておく約束"  # no phone, no name, no address: private all the same
REASON = "過去の遅延のお詫びとして先方社長と合意"


@pytest.fixture(scope="module")
def _world(make_home, model_dir):
    from fastapi.testclient import TestClient

    from hikitsugi.access.principals import assign, create_key
    from hikitsugi.config import get_settings
    from hikitsugi.index.update import ingest_paths
    from hikitsugi.storage.database import session_for

    home = make_home("findings-home")
    src = home / "src"
    src.mkdir()
    until = (dt.date.today() + dt.timedelta(days=10)).isoformat()
    (src / "customers.yaml").write_text(yaml.safe_dump([{
        "id": "C701", "name": "株式会社テスト物流", "aliases": ["テスト物流"], "rank": "A", "owner": "森 沙織（営業二課）",
        "commitments": [{"what": "30分以内に一次回答", "reason": REASON, "approved_by": "山口 和彦（部長）",
                         "valid_until": until}],
        "arrangements": ["毎月第2火曜に定期保守"],
        "emergency_contacts": [{"name": "石原 修", "role": "物流センター長", "phone": "090-0000-1234",
                                "email": "ishihara@test-logi.example.jp"}],
    }], allow_unicode=True), encoding="utf-8")
    with open(src / "notes.jsonl", "w", encoding="utf-8") as fh:
        for rid, text in [("NOTE-7001", PRIVATE_NOTE + "。次回も同じ。"),
                          ("NOTE-7002", "石原様から電話。折り返しは 11/05 090-0000-1234 まで。")]:
            fh.write(json.dumps({"記録ID": rid, "日時": "2026-01-10T10:00:00+09:00", "顧客名": "株式会社テスト物流",
                                 "記入者": "森 沙織", "内容": text}, ensure_ascii=False) + "\n")
    with open(src / "cases.csv", "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["受付番号", "受付日時", "顧客名", "件名", "問い合わせ内容", "解決策", "対応者", "ステータス"])
        w.writerow(["INC-77-0001", "2026/01/12 09:40", "株式会社テスト物流", "トナーが届かない",
                    "11/05 090-0000-1234 より着信、10:05 090-0000-5678 に折り返し。石原さまも同席。", "配送を手配。",
                    "石田 健", "完了"])
    report = ingest_paths([src], get_settings())
    assert report.files_failed == 0, report.problems
    session = session_for(get_settings().db_url)
    try:
        keys = {name: create_key(session, user, role, "findings")[1] for name, user, role in [
            ("admin", "f_admin", "admin"), ("agent", "f_mori", "agent"), ("lead", "f_lead", "lead"),
            ("other", "f_other", "agent"), ("other_lead", "f_lead2", "lead")]}
        assign(session, "f_mori", "C701", by="findings")
        assign(session, "f_lead", "C701", by="findings")
    finally:
        session.close()
    from hikitsugi.api.app import create_app

    with TestClient(create_app(), raise_server_exceptions=False) as client:
        yield client, keys, get_settings(), home


@pytest.fixture()
def world(_world, model_dir):
    """The world, with the environment pointing at it (other fixtures, such as the shared
    server's keys, point it at the sample home)."""
    client, keys, settings, home = _world
    before = {k: os.environ.get(k) for k in ("HIKITSUGI_HOME", "HIKITSUGI_MODEL")}
    os.environ["HIKITSUGI_HOME"] = str(home)
    os.environ["HIKITSUGI_MODEL"] = str(model_dir)
    yield client, keys, settings
    for k, v in before.items():  # later tests read the environment they set up, not this world's
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _audit(client, keys, **params) -> list[dict]:
    return client.get("/admin/audit", params={"limit": 1000, **params}, headers=H(keys["admin"])).json()["events"]


# ------------------------------------------------------------------ 1: lead reports and per-customer access

def test_finding1_lead_reports_follow_per_customer_access_and_are_audited(world):
    client, keys, _ = world
    other = H(keys["other_lead"])
    exp = client.get("/analytics/expiring-commitments", headers=other).json()["items"]
    mine = [i for i in exp if i["customer_id"] == "C701"]
    assert mine and all(i["reason"] is None and i["approved_by"] is None and i["restricted"] for i in mine)
    for path, params in [("/analytics/unretrieved", {"limit": 5000}), ("/analytics/stale", {"days": 0}),
                         ("/analytics/report", {})]:
        body = client.get(path, params=params, headers=other).text
        assert "NOTE-700" not in body and PRIVATE_NOTE[:10] not in body and REASON not in body, (path, body[:500])
    # the lead in charge of C701 sees the reason and the notes; each such read is audited
    lead = H(keys["lead"])
    exp = client.get("/analytics/expiring-commitments", headers=lead).json()["items"]
    assert any(i["reason"] == REASON for i in exp)
    unr = client.get("/analytics/unretrieved", params={"limit": 5000}, headers=lead).json()["items"]
    assert {"NOTE-7001", "NOTE-7002"} <= {i["source_id"] for i in unr}
    reads = _audit(client, keys, actor="f_lead", action="read")
    vias = {e["detail"].get("via") for e in reads if e["target"] == "customer:C701" and e["field"] == "private"}
    assert {"analytics/expiring", "analytics/unretrieved"} <= vias, reads


# ------------------------------------------------------------------ 2: phones after dates and times

def test_finding2_phone_numbers_after_dates_and_times_are_masked(world):
    from hikitsugi.insights.searchlog import SearchLog
    from hikitsugi.storage.database import session_for

    client, keys, settings = world
    other = H(keys["other"])
    doc = client.get("/documents/INC-77-0001", headers=other).json()
    text = " ".join(c["text"] for c in doc["chunks"])
    assert "0000-1234" not in text and "0000-5678" not in text and "石原" not in text and doc["redacted"], text
    r = client.post("/search", json={"query": "11/05 090-0000-1234 からトナーが届かない", "k": 5}, headers=other).json()
    card = next(c for c in r["results"] if c["source_id"] == "INC-77-0001")
    assert "1234" not in card["passage"] + card["snippet"] and card["redacted"]
    session = session_for(settings.db_url)
    try:
        row = session.query(SearchLog).filter(SearchLog.search_id == r["search_id"]).one()
    finally:
        session.close()
    assert "1234" not in row.query + row.normalized_query and "11/05" in row.query


# ------------------------------------------------------------------ 3: tokens never in a URL, never in a log

def test_finding3_tokens_never_reach_the_access_log(server, api_keys, sample_home):
    token = httpx.post(server + "/auth/token", json={"user": "mori"}, headers=H(api_keys["admin"]),
                       timeout=30).json()["token"]
    assert httpx.get(server + "/", params={"token": token}, timeout=30).status_code == 200
    time.sleep(0.5)
    logged = (sample_home / "server.log").read_text()
    assert "GET /?token=" in logged and token not in logged and token.split(".")[2] not in logged
    page = httpx.get(server + "/", timeout=30).text
    assert "location.hash" in page and 'params.get("token")' not in page  # the page hands tokens over by #token=


# ------------------------------------------------------------------ 4: names in the search log

def test_finding4_contact_names_typed_without_honorific_are_not_kept(world):
    from hikitsugi.insights.searchlog import SearchLog
    from hikitsugi.storage.database import session_for

    client, keys, settings = world
    sid = client.post("/search", json={"query": "石原修 トナーが届かない", "k": 3}, headers=H(keys["agent"])).json()["search_id"]
    session = session_for(settings.db_url)
    try:
        row = session.query(SearchLog).filter(SearchLog.search_id == sid).one()
    finally:
        session.close()
    assert "石原" not in row.query + row.normalized_query and "トナー" in row.query
    for key in ("other_lead", "lead"):
        top = client.get("/analytics/top-queries", params={"limit": 500}, headers=H(keys[key])).text
        assert "石原" not in top


# ------------------------------------------------------------------ 5: 500 on valid input

def test_finding5_edge_dates_are_valid_input_not_a_500(world):
    client, keys, _ = world
    r = client.post("/search", json={"query": "トナー", "filters": {"date_to": "9999-12-31"}}, headers=H(keys["other"]))
    assert r.status_code == 200, r.text
    r = client.post("/search", json={"query": "トナー", "filters": {"date_from": "0001-01-01"}}, headers=H(keys["other"]))
    assert r.status_code == 200, r.text
    for since in ("0001-01-01T00:00:00", "9999-12-31T23:59:59"):
        r = client.get("/admin/audit", params={"since": since, "until": "9999-12-31T23:59:59"}, headers=H(keys["admin"]))
        assert r.status_code == 200, r.text


def test_finding5_phone_number_in_a_url_keeps_its_access_log_line_masked(server, api_keys, sample_home):
    assert httpx.get(server + "/documents/090-1234-5678", headers=H(api_keys["admin"]), timeout=30).status_code == 404
    time.sleep(0.5)
    logged = (sample_home / "server.log").read_text()
    assert '"GET /documents/●●● HTTP/1.1" 404' in logged
    assert "090-1234-5678" not in logged and "Logging error" not in logged and "Traceback" not in logged


# ------------------------------------------------------------------ 6: audit gaps

def test_finding6_every_private_read_is_audited_whatever_its_text(world):
    client, keys, _ = world
    r = client.post("/search", json={"query": PRIVATE_NOTE, "k": 5, "mode": "lexical"}, headers=H(keys["agent"])).json()
    assert any(c["source_id"] == "NOTE-7001" for c in r["results"])
    reads = _audit(client, keys, actor="f_mori", target="customer:C701")
    assert any(e["field"] == "private" and e["detail"].get("document") == "NOTE-7001" for e in reads), reads
    assert client.get("/documents/NOTE-7001", headers=H(keys["agent"])).status_code == 200
    reads = _audit(client, keys, actor="f_mori", target="customer:C701")
    assert sum(e["detail"].get("document") == "NOTE-7001" for e in reads) >= 2


def test_finding6_forwarded_for_is_believed_only_from_trusted_proxies(server, api_keys):
    r = httpx.get(server + "/documents/C001", headers={**H(api_keys["agent"]), "X-Forwarded-For": "203.0.113.77"},
                  timeout=30)
    assert r.status_code == 200
    events = httpx.get(server + "/admin/audit", params={"actor": "mori", "target": "customer:C001", "limit": 5},
                       headers=H(api_keys["admin"]), timeout=30).json()["events"]
    assert events and all(e["source"] == "127.0.0.1" for e in events), events


def test_client_address_behind_trusted_proxies():
    from hikitsugi.api.deps import client_address

    assert client_address("198.51.100.7", "203.0.113.77", "") == "198.51.100.7"  # no proxy trusted
    assert client_address("198.51.100.7", "203.0.113.77", "10.0.0.0/8") == "198.51.100.7"  # not from the proxy
    assert client_address("10.0.0.2", "203.0.113.77", "10.0.0.0/8") == "203.0.113.77"
    # the client wrote the left part itself; the right-most untrusted hop is the client
    assert client_address("10.0.0.2", "1.2.3.4, 203.0.113.77, 10.0.0.9", "10.0.0.0/8") == "203.0.113.77"


# ------------------------------------------------------------------ 7: document identity includes its source

def test_finding7_same_relative_path_in_two_sources_never_overwrites(make_home, model_dir):
    from hikitsugi.config import get_settings
    from hikitsugi.index.update import ingest_paths
    from hikitsugi.storage.database import session_for
    from hikitsugi.storage.schema import Document

    home = make_home("identity-home")
    a, b = home / "team-a", home / "team-b"
    for d, text in ((a, "A チームの手順: 複合機の電源を入れ直す。"), (b, "B チームの手順: ルーターを再起動する。")):
        d.mkdir()
        (d / "README.md").write_text(f"# 手順\n\n{text}\n", encoding="utf-8")
    settings = get_settings()
    assert ingest_paths([a], settings).files_failed == 0
    assert ingest_paths([b], settings).files_failed == 0
    assert ingest_paths([a], settings).files_failed == 0  # unchanged: still there

    def live() -> dict[str, str]:
        session = session_for(settings.db_url)
        try:
            return {d.source_id: d.source_key for d in session.query(Document).filter(Document.retired_at.is_(None))}
        finally:
            session.close()

    docs = live()
    assert set(docs) == {"README.md", "team-b/README.md"}, docs
    assert docs["README.md"].startswith(str(a)) and docs["team-b/README.md"].startswith(str(b))
    # record ids colliding across sources: an error naming both files; the first record is kept
    for d in (a, b):
        (d / "cases.csv").write_text("受付番号,件名,問い合わせ内容,解決策\nINC-1,紙詰まり,紙が詰まる,ローラー清掃\n",
                                     encoding="utf-8")
    assert ingest_paths([a], settings).files_failed == 0
    report = ingest_paths([b], settings)
    assert report.files_failed == 1
    problem = " ".join(report.problems)
    assert str(a / "cases.csv") in problem and str(b / "cases.csv") in problem and "INC-1" in problem
    assert live()["INC-1"] == str(a / "cases.csv")
    assert ingest_paths([b], settings).files_failed == 1  # said again on the next run, not forgotten


# ------------------------------------------------------------------ 8: the smaller ones

def test_finding8_feedback_only_on_own_search_and_what_it_showed(world):
    client, keys, _ = world
    r = client.post("/search", json={"query": "トナーが届かない", "k": 3}, headers=H(keys["agent"])).json()
    sid, shown = r["search_id"], [c["source_id"] for c in r["results"]]
    stolen = client.post("/feedback", json={"outcome": "resolved", "search_id": sid}, headers=H(keys["other"]))
    assert stolen.status_code == 422 and "トナー" not in stolen.text
    for body in ({"result_ids": shown + ["NOT-SHOWN-1"]}, {"source_id": "NOT-SHOWN-1"}):
        never = client.post("/feedback", json={"outcome": "resolved", "search_id": sid, **body},
                            headers=H(keys["agent"]))
        assert never.status_code == 422, never.text
    ok = client.post("/feedback", json={"outcome": "resolved", "search_id": sid, "source_id": shown[0]},
                     headers=H(keys["agent"]))
    assert ok.status_code == 201 and ok.json()["result_ids"] == shown


def test_finding8_hidden_and_missing_documents_answer_alike(world):
    client, keys, _ = world
    hidden = client.get("/documents/NOTE-7001", headers=H(keys["other"]))
    missing = client.get("/documents/NOTE-9999", headers=H(keys["other"]))
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"].replace("NOTE-7001", "X") == missing.json()["detail"].replace("NOTE-9999", "X")


def test_finding8_nul_bytes_are_refused(world):
    client, keys, _ = world
    admin = H(keys["admin"])
    for method, path, body in [("POST", "/search", {"query": "トナー\x00"}),
                               ("POST", "/search", {"query": "トナー", "customer": "C7\x0001"}),
                               ("POST", "/search", {"query": "トナー", "filters": {"statuses": ["完\x00了"]}}),
                               ("POST", "/feedback", {"outcome": "resolved", "search_id": "ab", "comment": "a\x00"}),
                               ("POST", "/auth/token", {"user": "mo\x00ri"})]:
        r = client.request(method, path, json=body, headers=admin)
        assert r.status_code == 422, (path, body, r.text)
    assert client.get("/admin/audit", params={"actor": "a\x00b"}, headers=admin).status_code == 422
    assert client.get("/documents/NOTE%007001", headers=admin).status_code in (404, 422)


def test_finding8_failed_authentications_are_limited(world, monkeypatch):
    from fastapi.testclient import TestClient

    from hikitsugi.api.app import create_app

    _, keys, _ = world
    monkeypatch.setenv("HIKITSUGI_AUTH_FAILURES_PER_MIN", "1")
    monkeypatch.setenv("HIKITSUGI_AUTH_FAILURES_BURST", "3")
    client = TestClient(create_app())
    codes = [client.get("/documents/C701", headers=H(f"hk_00000000{i:02d}_guess")).status_code for i in range(4)]
    assert codes == [401, 401, 401, 429], codes
    blocked = client.get("/documents/C701", headers=H(keys["admin"]))  # even a valid key: no hit/miss oracle
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) >= 1


def test_finding8_pages_carry_security_headers(world):
    client, _, _ = world
    for path in ("/", "/leads"):
        r = client.get(path)
        csp = r.headers.get("content-security-policy", "")
        assert r.headers.get("x-frame-options") == "DENY" and r.headers.get("x-content-type-options") == "nosniff"
        assert "frame-ancestors 'none'" in csp and "script-src 'self' 'sha256-" in csp and "unsafe-inline'" not in \
            csp.split("script-src")[1].split(";")[0]
    assert client.get("/healthz").headers.get("x-content-type-options") == "nosniff"


def test_finding8_database_file_is_private(tmp_path, monkeypatch):
    from hikitsugi.config import get_settings
    from hikitsugi.storage.database import session_for

    monkeypatch.setenv("HIKITSUGI_HOME", str(tmp_path / "fresh-home"))
    monkeypatch.delenv("HIKITSUGI_DATABASE_URL", raising=False)
    settings = get_settings()
    settings.ensure_dirs()
    session_for(settings.db_url).close()
    db = tmp_path / "fresh-home" / "hikitsugi.db"
    assert stat.S_IMODE(db.stat().st_mode) == 0o600, oct(db.stat().st_mode)
    assert stat.S_IMODE((tmp_path / "fresh-home").stat().st_mode) & 0o077 == 0


def test_finding8_content_gaps_cost_is_bounded(world, monkeypatch):
    """A flood of distinct no-hit queries from one key is not all embedded and clustered."""
    from hikitsugi.insights import reports
    from hikitsugi.insights.searchlog import SearchLog
    from hikitsugi.storage.database import session_for

    client, keys, settings = world
    cap = getattr(settings, "gap_max_queries", 300)
    at = dt.datetime.now(dt.timezone.utc)
    session = session_for(settings.db_url)
    try:
        for i in range(cap + 200):
            q = f"存在しない話題 {i:05d}"
            session.add(SearchLog(search_id=f"flood{i:06d}", created_at=at, user="f_flood", role="agent", query=q,
                                  normalized_query=q, mode="hybrid", k=5, result_ids=[], confidence=None,
                                  confident=False))
        session.commit()
    finally:
        session.close()
    embedded = []
    original = reports._embed_cached

    def counting(texts, s, embed):  # the real function, counted
        embedded.append(len(texts))
        return original(texts, s, embed)

    monkeypatch.setattr(reports, "_embed_cached", counting)
    t = time.perf_counter()
    gaps = client.get("/analytics/content-gaps", params={"limit": 5}, headers=H(keys["admin"])).json()
    took = time.perf_counter() - t
    assert sum(embedded) <= cap, f"{sum(embedded)} queries embedded for one report"
    assert gaps["clustered_queries"] <= cap < gaps["distinct_queries"]
    print(f"content-gaps over {gaps['distinct_queries']} distinct queries: {gaps['clustered_queries']} clustered "
          f"in {took:.1f} s")
