"""Keys, roles, per-customer access, grants, audit and hardening — over real HTTP against
a `hikitsugi serve` on the sample home (fixtures ``server``/``api_keys``), plus the few
things only reachable in-process (rate limit, CORS, error bodies, log masking)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3

import httpx
import pytest
from sqlalchemy import text

from conftest import run_cli

H = lambda key: {"X-API-Key": key}  # noqa: E731


def test_every_call_but_healthz_needs_a_valid_key(server, api_keys):
    assert httpx.get(server + "/healthz").status_code == 200
    for method, path, body in [("POST", "/search", {"query": "紙詰まり"}), ("GET", "/documents/C001", None),
                               ("GET", "/admin/audit", None), ("POST", "/auth/token", {"user": "x"})]:
        r = httpx.request(method, server + path, json=body, timeout=30)
        assert r.status_code == 401 and "API key" in r.json()["detail"], (path, r.text)
        bad = httpx.request(method, server + path, json=body, headers=H("hk_0000000000_nope"), timeout=30)
        assert bad.status_code == 401
    assert httpx.get(server + "/admin/audit", headers=H(api_keys["agent"]), timeout=30).status_code == 403
    assert httpx.get(server + "/admin/audit", headers=H(api_keys["lead"]), timeout=30).status_code == 403


def test_assigned_agent_sees_everything_and_each_sensitive_read_is_audited(server, api_keys):
    q = {"query": "青葉さんのいつもの件で連絡が来た", "k": 10}
    r = httpx.post(server + "/search", json=q, headers=H(api_keys["agent"]), timeout=60).json()
    ctx = r["customer"]
    assert ctx["customer_id"] == "C001" and not ctx["restricted"]
    assert ctx["arrangements"] and ctx["emergency_contacts"][0]["phone"] == "090-0000-1234"
    assert any(x["kind"] == "note" for x in r["results"])
    audit = httpx.get(server + "/admin/audit", params={"actor": "mori", "target": "customer:C001"},
                      headers=H(api_keys["admin"]), timeout=30).json()["events"]
    fields = {(e["action"], e["field"]) for e in audit}
    assert ("read", "emergency_contacts") in fields and ("read", "private") in fields
    assert all(e["source"] == "127.0.0.1" and e["at"] for e in audit)


def test_unassigned_agent_sees_only_the_basic_part(server, api_keys):
    key = H(api_keys["other"])
    r = httpx.post(server + "/search", json={"query": "青葉さんのいつもの件で連絡が来た 石原センター長", "k": 10},
                   headers=key, timeout=60).json()
    ctx = r["customer"]
    assert ctx["restricted"] and not ctx["arrangements"] and not ctx["preferences"] and not ctx["emergency_contacts"]
    assert ctx["commitments"][0]["what"].startswith("問い合わせには30分以内") and ctx["commitments"][0]["reason"] is None
    body = json.dumps({k: v for k, v in r.items() if k not in ("query", "normalized_query")}, ensure_ascii=False)
    for secret in ("090-0000-1234", "ishihara@", "第2火曜日 10時", "午後2時以降", "石原 修", "石原センター長"):
        assert secret not in body, secret
    assert all(x["kind"] != "note" for x in r["results"])
    assert all(x["context"] == "顧客カルテ" for x in r["results"] if x["kind"] == "customer")
    assert httpx.get(server + "/documents/NOTE-0004", headers=key, timeout=30).status_code == 404  # alike a missing id
    doc = httpx.get(server + "/documents/C001", headers=key, timeout=30).json()
    assert doc["redacted"] and "emergency_contacts" not in doc["meta"] and "arrangements" not in doc["meta"]
    assert [c["context"] for c in doc["chunks"]] == ["顧客カルテ"]
    full = httpx.get(server + "/documents/C001", headers=H(api_keys["agent"]), timeout=30).json()
    assert full["meta"]["emergency_contacts"] and not full["redacted"]


def test_personal_data_in_cases_is_masked_for_others(server, api_keys):
    q = {"query": "打刻修正の申請メールが届かない noreply", "k": 20, "filters": {"kinds": ["case"]}}
    admin = httpx.post(server + "/search", json=q, headers=H(api_keys["admin"]), timeout=60).json()
    other = {x["source_id"]: x for x in httpx.post(server + "/search", json=q, headers=H(api_keys["other"]),
                                                   timeout=60).json()["results"]}
    checked = 0
    for x in admin["results"]:
        if "noreply@" in x["passage"] and x["source_id"] in other:
            seen = other[x["source_id"]]
            assert "noreply@" not in seen["passage"] + seen["snippet"] and "●●●" in seen["passage"]
            assert seen["redacted"]
            checked += 1
    assert checked, "the sample cases carry an e-mail address"


def test_tokens_for_host_tool_users(server, api_keys):
    r = httpx.post(server + "/auth/token", json={"user": "mori", "role": "agent", "ttl_s": 120},
                   headers=H(api_keys["admin"]), timeout=30)
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    res = httpx.post(server + "/search", json={"query": "青葉物流の件"}, timeout=60,
                     headers={"Authorization": f"Bearer {token}"}).json()
    assert res["customer"]["emergency_contacts"]  # mori is assigned to C001
    assert httpx.post(server + "/auth/token", json={"user": "mori"}, headers=H(api_keys["agent"]),
                      timeout=30).status_code == 403
    bad = httpx.post(server + "/search", json={"query": "x"}, headers={"Authorization": f"Bearer {token}x"}, timeout=30)
    assert bad.status_code == 401 and "not valid" in bad.json()["detail"]


def test_revoked_key_and_its_tokens_stop_at_once(server, sample_home, model_dir):
    created = json.loads(run_cli("keys", "create", "--user", "integration", "--role", "admin", "--json",
                                 env_home=sample_home, model=model_dir).stdout)
    token = httpx.post(server + "/auth/token", json={"user": "sato"}, headers=H(created["key"]), timeout=30).json()
    assert httpx.get(server + "/documents/C002", headers=H(created["key"]), timeout=30).status_code == 200
    assert run_cli("keys", "revoke", created["key_id"], env_home=sample_home, model=model_dir).returncode == 0
    assert httpx.get(server + "/documents/C002", headers=H(created["key"]), timeout=30).status_code == 401
    r = httpx.get(server + "/documents/C002", headers={"Authorization": f"Bearer {token['token']}"}, timeout=30)
    assert r.status_code == 401 and "revoked" in r.json()["detail"]
    listed = run_cli("keys", "list", "--json", env_home=sample_home, model=model_dir).stdout
    assert created["key"] not in listed
    for f in sample_home.glob("hikitsugi.db*"):  # the database and its WAL: only the hash is stored
        assert created["key"].encode() not in f.read_bytes()


def test_handover_grant_gives_and_ends_access(server, sample_home, model_dir, api_keys, use_home):
    from hikitsugi.access.principals import visible_customers
    from hikitsugi.storage.database import session_for

    tanaka = json.loads(run_cli("keys", "create", "--user", "tanaka", "--json", env_home=sample_home,
                                model=model_dir).stdout)["key"]
    assert run_cli("staff", "assign", "--user", "suzuki", "--customer", "さくら会計", env_home=sample_home,
                   model=model_dir).returncode == 0
    assert httpx.get(server + "/documents/NOTE-0005", headers=H(tanaka), timeout=30).status_code == 404
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=9))).date()
    until = (today + dt.timedelta(days=7)).isoformat()
    out = run_cli("grants", "add", "--from", "suzuki", "--to", "tanaka", "--customer", "C010", "--until", until,
                  env_home=sample_home, model=model_dir)
    assert out.returncode == 0, out.stderr
    doc = httpx.get(server + "/documents/NOTE-0005", headers=H(tanaka), timeout=30)  # みなと法律事務所 = C010
    assert doc.status_code == 200 and not doc.json()["redacted"]
    session = session_for(use_home.db_url)
    try:
        later = (today + dt.timedelta(days=8)).isoformat()
        assert "C010" in visible_customers(session, "tanaka", until)
        assert "C010" not in visible_customers(session, "tanaka", later)  # expires by itself
        assert "C002" in visible_customers(session, "suzuki", later)
    finally:
        session.close()
    grants = json.loads(run_cli("grants", "list", "--json", env_home=sample_home, model=model_dir).stdout)
    gid = next(g["id"] for g in grants if g["to"] == "tanaka")
    assert run_cli("grants", "revoke", str(gid), env_home=sample_home, model=model_dir).returncode == 0
    assert httpx.get(server + "/documents/NOTE-0005", headers=H(tanaka), timeout=30).status_code == 404
    past = run_cli("grants", "add", "--from", "a", "--to", "b", "--customer", "C010", "--until", "2000-01-01",
                   env_home=sample_home, model=model_dir)
    assert past.returncode == 2 and "past" in past.stderr
    log = json.loads(run_cli("audit", "--target", "customer:C010", "--json", env_home=sample_home,
                             model=model_dir).stdout)
    assert {"grant.add", "grant.revoke"} <= {e["action"] for e in log}


def test_predecessor_access_ends_on_the_grant_date(sample_home, model_dir, api_keys):
    from hikitsugi.access.principals import add_grant, assign, visible_customers
    from hikitsugi.config import get_settings
    from hikitsugi.storage.database import session_for

    session = session_for(get_settings().db_url)
    try:
        assign(session, "yamada", "C003", by="tests")
        add_grant(session, "yamada", "kato", "C003", "2099-12-31", "2099-01-01", by="tests")
        assert "C003" in visible_customers(session, "yamada", "2099-12-31")
        assert "C003" not in visible_customers(session, "yamada", "2100-01-01")
        assert "C003" not in visible_customers(session, "kato", "2100-01-01")
    finally:
        session.close()


def test_audit_log_is_append_only(server, sample_home, api_keys):
    db = sqlite3.connect(sample_home / "hikitsugi.db")
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("UPDATE audit_log SET actor = 'someone else'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("DELETE FROM audit_log")
    finally:
        db.close()
    for method in ("DELETE", "PUT", "PATCH", "POST"):
        r = httpx.request(method, server + "/admin/audit", headers=H(api_keys["admin"]), timeout=30)
        assert r.status_code == 405, method


def test_request_size_and_query_limits(server, api_keys):
    big = json.dumps({"query": "紙詰まり", "filters": {"products": ["x" * 2000] * 50}})
    r = httpx.post(server + "/search", content=big, headers={**H(api_keys["admin"]), "content-type": "application/json"},
                   timeout=30)
    assert len(big) > 65536 and r.status_code == 413

    def chunks():
        for _ in range(100):
            yield b"x" * 1024

    r = httpx.post(server + "/search", content=chunks(), headers={**H(api_keys["admin"]),
                                                                  "content-type": "application/json"}, timeout=30)
    assert r.status_code == 413
    r = httpx.post(server + "/search", json={"query": "紙" * 1001}, headers=H(api_keys["admin"]), timeout=30)
    assert r.status_code == 422


@pytest.fixture()
def inproc(use_home, monkeypatch, api_keys):
    """The app in-process, for settings the shared server does not have."""
    from fastapi.testclient import TestClient

    def make(**env):
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        from hikitsugi.api.app import create_app

        return TestClient(create_app(), raise_server_exceptions=False)

    return make


def test_rate_limit_per_key(inproc, api_keys):
    client = inproc(HIKITSUGI_RATE_LIMIT_PER_S="0.5", HIKITSUGI_RATE_LIMIT_BURST="3")
    codes = [client.get("/documents/NO-SUCH", headers=H(api_keys["lead"])).status_code for _ in range(5)]
    assert codes[:3] == [404, 404, 404] and codes[3] == 429
    r = client.get("/documents/NO-SUCH", headers=H(api_keys["lead"]))
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert client.get("/documents/NO-SUCH", headers=H(api_keys["other"])).status_code == 404  # another key


def test_cors_only_for_configured_origins(inproc, api_keys):
    client = inproc(HIKITSUGI_CORS_ORIGINS="https://support.example.co.jp")
    pre = {"access-control-request-method": "POST", "access-control-request-headers": "x-api-key,content-type"}
    ok = client.options("/search", headers={"origin": "https://support.example.co.jp", **pre})
    assert ok.headers.get("access-control-allow-origin") == "https://support.example.co.jp"
    bad = client.options("/search", headers={"origin": "https://evil.example", **pre})
    assert "access-control-allow-origin" not in bad.headers


def test_errors_carry_no_stack_trace_or_sql(inproc, api_keys, monkeypatch):
    import hikitsugi.api.scope as scope_module

    def boom(*a, **kw):
        raise RuntimeError("SELECT secret FROM api_keys WHERE key_hash = 'abc'")

    monkeypatch.setattr(scope_module, "search", boom)
    r = inproc().post("/search", json={"query": "紙詰まり"}, headers=H(api_keys["admin"]))
    assert r.status_code == 500 and "SELECT" not in r.text and "Traceback" not in r.text


def test_weak_secret_refuses_to_start(inproc):
    from hikitsugi.api.tokens import TokenError

    with pytest.raises(TokenError, match="shorter"):
        inproc(HIKITSUGI_SECRET_KEY="short")


def test_logs_never_carry_phone_numbers_or_addresses(inproc, caplog):
    inproc()  # installs the masking
    with caplog.at_level(logging.INFO, logger="hikitsugi.test"):
        logging.getLogger("hikitsugi.test").info("query was %s", "折り返しは090-1234-5678、a.b@example.jp まで")
    assert "090-1234-5678" not in caplog.text and "a.b@example.jp" not in caplog.text and "●●●" in caplog.text


def test_pii_patterns():
    from hikitsugi.access.masking import Lexicon, mask

    lex = Lexicon(people=frozenset({"石原 修"}), keep=frozenset({"青葉物流", "森"}))
    cases = {
        "電話090-1234-5678まで": "電話●●●まで", "03(1234)5678": "●●●", "+81-90-1234-5678": "●●●",
        "〒105-0011 東京都港区芝公園1-2-3": "●●●", "石原センター長": "●●●センター長", "石原 修": "●●●",
        "高橋様より": "●●●様より", "青葉物流様": "青葉物流様", "担当 森様": "担当 森様",
        "仕様の確認、お客様と同様に": "仕様の確認、お客様と同様に", "INC-24-0012 2024-01-15 10,000円": "INC-24-0012 2024-01-15 10,000円",
    }
    for raw, want in cases.items():
        assert mask(raw, lex)[0] == want, raw


def test_migration_is_on_the_single_head():
    from alembic.script import ScriptDirectory

    from hikitsugi.storage.migrate import alembic_config

    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert len(heads) == 1, heads


def test_sqlalchemy_audit_rows_cannot_be_changed(use_home, api_keys):
    from sqlalchemy.exc import DatabaseError

    from hikitsugi.storage.database import engine_for

    with engine_for(use_home.db_url).connect() as conn:
        with pytest.raises(DatabaseError):
            conn.execute(text("DELETE FROM audit_log WHERE id = (SELECT MIN(id) FROM audit_log)"))
