"""Feedback, the search log and what leads see.

Over real HTTP (the ``server`` fixture, real keys): every search is logged and returns a
``search_id``; 解決した / 役に立たなかった / エスカレーションした are recorded with the
query, the results shown and the key's user; the lead endpoints need a lead's key and
report on what was searched. On a fresh database with controlled timestamps: the
counting rule of the weekly self-resolution rate, content-gap clustering with the real
embedder, documents never retrieved, stale documents, expiring commitments, and
``hikitsugi eval live``.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import httpx
import pytest

from hikitsugi.config import Settings
from hikitsugi.insights.reports import TRUSTED
from hikitsugi.insights.searchlog import confidence_of

from conftest import run_cli

UTC = dt.timezone.utc


def _feedback_when_logged(api, body: dict) -> httpx.Response:
    """The search log row is written just after the search response; retry briefly."""
    for _ in range(100):
        r = api.post("/feedback", json=body)
        if r.status_code != 422 or "unknown search_id" not in r.text:
            return r
        time.sleep(0.05)
    return r


# --------------------------------------------------------------------------- over HTTP

def test_search_is_logged_and_feedback_recorded(api, server):
    data = api.post("/search", json={"query": "紙が何度も詰まる", "k": 5, "customer": "C001"}).json()
    sid, shown = data["search_id"], [r["source_id"] for r in data["results"]]
    assert len(sid) == 32 and shown
    r = _feedback_when_logged(api, {"outcome": "resolved", "search_id": sid, "source_id": shown[0]})
    assert r.status_code == 201, r.text
    fb = r.json()
    # query and results come from the server's own log, the user from the key
    assert fb["query"] == "紙が何度も詰まる" and fb["result_ids"] == shown and fb["user"] == "admin"
    assert fb["outcome"] == "resolved" and fb["source_id"] == shown[0]

    # an outcome needs the caller's own search and may name only what it showed
    bad = [({"outcome": "resolved", "search_id": "0" * 32}, "search_id"),
           ({"outcome": "escalated", "query": "別画面から", "result_ids": ["INC-24-0007"]}, "search_id"),
           ({"outcome": "done", "search_id": sid}, "outcome"),
           ({"outcome": "resolved", "search_id": sid, "source_id": "NOT-SHOWN"}, "source_id"),
           ({"outcome": "resolved", "search_id": sid, "result_ids": shown + ["NOT-SHOWN"]}, "result_ids"),
           ({"outcome": "resolved", "search_id": sid, "extra": 1}, "extra")]
    for body, field in bad:
        r = api.post("/feedback", json=body)
        assert r.status_code == 422 and r.json()["detail"][0]["field"] == field, (body, r.text)
    assert httpx.post(server + "/feedback", json={"outcome": "resolved", "query": "x"}, timeout=30).status_code == 401


def test_personal_data_in_queries_is_masked_in_the_log(api, sample_home):
    from hikitsugi.insights.feedback import Feedback
    from hikitsugi.insights.searchlog import SearchLog
    from hikitsugi.storage.database import session_for

    q = "090-1234-5678 から紙詰まりの電話"
    sid = api.post("/search", json={"query": q, "k": 3}).json()["search_id"]
    assert _feedback_when_logged(api, {"outcome": "not_helpful", "search_id": sid}).status_code == 201
    session = session_for(f"sqlite:///{sample_home / 'hikitsugi.db'}")
    try:
        logged = session.query(SearchLog).filter(SearchLog.search_id == sid).one()
        fb = session.query(Feedback).filter(Feedback.search_id == sid).one()
    finally:
        session.close()
    for text in (logged.query, logged.normalized_query, fb.query):
        assert "1234" not in text and "●●●" in text and "紙詰まり" in text


def test_lead_endpoints_need_a_lead(server, api_keys):
    for path in ("/analytics/report", "/analytics/top-queries", "/analytics/content-gaps", "/analytics/unretrieved",
                 "/analytics/stale", "/analytics/expiring-commitments", "/analytics/deflection"):
        assert httpx.get(server + path, timeout=30).status_code == 401, path
        r = httpx.get(server + path, headers={"X-API-Key": api_keys["agent"]}, timeout=30)
        assert r.status_code == 403 and "lead" in r.json()["detail"], path
    r = httpx.get(server + "/analytics/top-queries", headers={"X-API-Key": api_keys["lead"]}, timeout=30)
    assert r.status_code == 200 and "items" in r.json()
    page = httpx.get(server + "/leads", timeout=30)
    assert page.status_code == 200 and "リーダー向けレポート" in page.text
    js = httpx.get(server + "/widget.js", timeout=30)
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert "customElements.define(\"hikitsugi-search\"" in js.text


def test_lead_reports_over_http(server, api_keys, sample_home):
    lead = httpx.Client(base_url=server, headers={"X-API-Key": api_keys["lead"]}, timeout=120)
    canteen = ["社員食堂の今日のメニューを知りたい", "食堂のランチメニューはどこで見られますか", "社食のメニューを教えて"]
    plants = ["観葉植物の水やりの頻度", "観葉植物に水をあげる間隔は"]
    threshold = Settings().self_resolve_threshold
    confident: dict[str, bool] = {}
    for q in canteen + plants + ["紙が何度も詰まる", "紙が何度も詰まる"]:
        d = lead.post("/search", json={"query": q, "k": 5}).json()
        conf = confidence_of(d)
        confident[q] = conf is not None and conf >= threshold
    time.sleep(0.5)  # the log rows are written after the responses

    top = lead.get("/analytics/top-queries", params={"limit": 50}).json()["items"]
    jam = next(t for t in top if t["query"] == "紙が何度も詰まる")
    assert jam["count"] >= 2 and jam["users"] >= 1

    gaps = lead.get("/analytics/content-gaps", params={"limit": 500}).json()
    assert gaps["threshold"] == threshold
    where = {q["query"]: i for i, c in enumerate(gaps["clusters"]) for q in c["queries"]}
    for q, ok in confident.items():
        assert (q in where) == (not ok), q  # exactly the queries without a confident hit
    canteen_clusters = {where[q] for q in canteen if q in where}
    plant_clusters = {where[q] for q in plants if q in where}
    assert len(canteen_clusters) <= 1 and not canteen_clusters & plant_clusters, gaps["clusters"]
    assert sum(not confident[q] for q in canteen) >= 2, "the canteen questions should be content gaps"
    cluster = gaps["clusters"][canteen_clusters.pop()]
    assert cluster["label"] in canteen and cluster["count"] >= 2

    unr = lead.get("/analytics/unretrieved").json()
    assert 0 < unr["never_retrieved"] < unr["documents"]
    assert "INC-24-0007" not in {i["source_id"] for i in unr["items"]}
    assert lead.get("/analytics/stale").json()["stale"] == 0  # ingested minutes ago
    stale = lead.get("/analytics/stale", params={"days": 0, "kind": "manual"}).json()
    assert stale["stale"] >= 5 and {i["kind"] for i in stale["items"]} == {"manual"}

    # Which commitments fall in the window is proven with fixed dates on a fresh database
    # (test_documents_never_retrieved_stale_and_expiring); over HTTP the route must count
    # from the desk's own today and agree with that function, whatever the date of the run.
    from hikitsugi.insights.reports import desk_today, expiring_commitments
    from hikitsugi.storage.database import session_for

    exp = lead.get("/analytics/expiring-commitments", params={"days": 3650}).json()
    assert exp["today"] == desk_today(Settings()).isoformat()
    session = session_for(f"sqlite:///{sample_home / 'hikitsugi.db'}")
    try:
        direct = expiring_commitments(session, 3650, today=dt.date.fromisoformat(exp["today"]), scope=TRUSTED)
    finally:
        session.close()
    assert [(i["customer_id"], i["valid_until"]) for i in exp["items"]] == \
        [(i["customer_id"], i["valid_until"]) for i in direct["items"]]
    assert all(i["what"] and 0 <= i["days_left"] <= 3650 for i in exp["items"])

    report = lead.get("/analytics/report").json()
    assert set(report) >= {"top_queries", "content_gaps", "unretrieved", "stale", "expiring", "deflection", "log"}
    assert report["log"]["searches"] >= 7
    lead.close()


# --------------------------------------------------------------------------- fresh database

def _at(day: str, hour: int = 12) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


class _P:  # a principal as the routes get it
    def __init__(self, user: str, role: str = "agent") -> None:
        self.user, self.role, self.key_id = user, role, None


@pytest.fixture()
def fresh(tmp_path):
    from hikitsugi.storage.database import session_for

    settings = Settings(home=tmp_path / "home")
    settings.ensure_dirs()
    session = session_for(settings.db_url)
    yield settings, session
    session.close()


def _log(settings, sid: str, query: str, at: dt.datetime, ids=("D1",), confidence=0.9, user="mori"):
    from hikitsugi.insights.searchlog import record_search

    resp = {"normalized_query": query, "mode": "hybrid", "took_ms": 10.0,
            "results": [{"source_id": i, "dense_score": confidence} for i in ids],
            "guidance": {"action": "self_resolve", "confidence": confidence}}
    record_search(settings, sid, _P(user), {"query": query, "k": 5}, resp, at=at, scope="", lexicon=None)


def _feedback_rows(settings) -> None:
    """Week of 2026-11-02: s1 resolved; s2 not helpful, then resolved; s3 escalated; s4 not
    helpful. Week of 2026-11-09: s5 escalated and not helpful; two resolved without a search."""
    from hikitsugi.insights.feedback import record_feedback

    for i, day in enumerate(["2026-11-04"] * 4 + ["2026-11-11"] * 2, 1):
        _log(settings, f"s{i}", f"質問{i}", _at(day))
    p = _P("mori")
    record_feedback(settings, p, "resolved", "", [], search_id="s1", source_id="D1", at=_at("2026-11-04"))
    for sid, outcome, day in [("s2", "not_helpful", "2026-11-04"),
                              ("s2", "resolved", "2026-11-05"), ("s3", "escalated", "2026-11-04"),
                              ("s4", "not_helpful", "2026-11-04"), ("s5", "escalated", "2026-11-11"),
                              ("s5", "not_helpful", "2026-11-11")]:
        record_feedback(settings, p, outcome, "", [], search_id=sid, at=_at(day))
    for _ in range(2):
        record_feedback(settings, p, "resolved", "画面から直接", ["D9"], at=_at("2026-11-12"))


def test_weekly_self_resolution_rate(fresh):
    from hikitsugi.insights.reports import weekly_deflection

    settings, session = fresh
    _feedback_rows(settings)
    rep = weekly_deflection(session)
    w1, w2 = rep["weeks"]
    assert (w1["week"], w1["week_start"], w2["week"]) == ("2026-W45", "2026-11-02", "2026-W46")
    assert (w1["outcomes"], w1["resolved"], w1["escalated"], w1["not_helpful"]) == (4, 2, 1, 1)
    assert w1["self_resolution_rate"] == 0.5 and w1["searches"] == 4 and w1["feedback_rate"] == 1.0
    assert (w2["outcomes"], w2["resolved"], w2["escalated"], w2["not_helpful"]) == (3, 2, 1, 0)
    assert w2["self_resolution_rate"] == round(2 / 3, 4) and w2["searches"] == 2
    assert rep["total"]["self_resolution_rate"] == round(4 / 7, 4)
    only_last = weekly_deflection(session, weeks=1, now=_at("2026-11-13"))
    assert [w["week"] for w in only_last["weeks"]] == ["2026-W46"]


def test_eval_live_cli_writes_json_and_html(fresh, tmp_path):
    settings, _ = fresh
    _feedback_rows(settings)
    out = tmp_path / "report"
    r = run_cli("eval", "live", "--json", "--out", str(out), env_home=settings.home)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert [w["self_resolution_rate"] for w in data["weeks"]] == [0.5, round(2 / 3, 4)]
    assert data["most_resolving"] == [{"source_id": "D1", "resolved": 1, "not_helpful": 0}]
    assert json.loads((out / "live.json").read_text("utf-8"))["total"] == data["total"]
    page = (out / "live.html").read_text("utf-8")
    assert "Self-resolution rate by week" in page and "data:image/png;base64," in page and "2026-W46" in page
    text = run_cli("eval", "live", env_home=settings.home)
    assert text.returncode == 0 and "2026-W45" in text.stdout and "50.0%" in text.stdout


# Paraphrase groups (one topic each) with no answer in the sample corpus. With
# average linkage, a cut at cosine 0.87–0.88 recovers exactly these 8 topics with
# multilingual-e5-small; 0.86 merges two of them, 0.89 splits two.
GAP_TOPICS = [
    ["社員食堂の今日のメニューを知りたい", "食堂のランチメニューはどこで見られますか", "社食のメニューを教えて", "社員食堂のメニュー"],
    ["観葉植物の水やりの頻度", "観葉植物に水をあげる間隔は", "観葉植物の水やり"],
    ["有給休暇の申請が承認されない", "有給の申請が上長の承認待ちのまま", "有給が承認できない"],
    ["請求書の宛名を変更したい", "請求書の宛先を変えてほしい", "請求書の送付先変更"],
    ["会議室の予約方法", "会議室を予約するにはどうすればいい", "ミーティングルームの予約手順"],
    ["駐車場の契約を解約したい", "月極駐車場をやめたい"],
    ["エアコンが効かない", "冷房が全然冷えない", "空調が壊れている"],
    ["新入社員のアカウント発行", "新しく入った人のID作成"],
]


def test_content_gaps_cluster_by_meaning(fresh, model_dir):
    from hikitsugi.embedding.encoder import get_embedder
    from hikitsugi.insights.reports import content_gaps

    settings, session = fresh
    embed = get_embedder(Settings(home=settings.home, model=str(model_dir))).embed_queries
    now = _at("2026-11-20")
    n = 0
    for t, topic in enumerate(GAP_TOPICS):
        for j, q in enumerate(topic):
            for _ in range(3 if (t, j) == (2, 2) else 1):  # 「有給が承認できない」 asked three times
                n += 1
                _log(settings, f"g{n}", q, now - dt.timedelta(days=1), confidence=0.8)
    _log(settings, "ok1", "紙詰まり", now - dt.timedelta(days=1), confidence=0.95)  # confident: not a gap
    _log(settings, "old", "有給が承認できない", now - dt.timedelta(days=60), confidence=0.8)  # outside the window
    gaps = content_gaps(session, settings, days=30, now=now, embed=embed, scope=TRUSTED)
    assert gaps["searches"] == n + 1 and gaps["no_confident_hit"] == n and gaps["similarity"] == 0.88
    got = sorted(sorted(q["query"] for q in c["queries"]) for c in gaps["clusters"])
    assert got == sorted(sorted(t) for t in GAP_TOPICS)
    first = gaps["clusters"][0]  # biggest first: 5 searches about 有給
    assert first["count"] == 5 and first["label"] in GAP_TOPICS[2] and first["queries"][0]["query"] == "有給が承認できない"
    assert gaps["clusters"][1]["count"] == 4 and gaps["clusters"][1]["label"] in GAP_TOPICS[0]
    # the label is the most central query of its cluster
    food = gaps["clusters"][1]
    vecs = embed([q["query"] for q in food["queries"]])
    central = food["queries"][int((vecs @ vecs.T).sum(axis=1).argmax())]["query"]
    assert food["label"] == central


def test_documents_never_retrieved_stale_and_expiring(fresh):
    from hikitsugi.insights.reports import (
        expiring_commitments,
        stale_documents,
        unretrieved_documents,
    )
    from hikitsugi.storage.schema import Document

    settings, session = fresh
    now = _at("2026-11-20")
    today = now.date()
    old, fresh_day = now - dt.timedelta(days=400), now - dt.timedelta(days=3)
    commitments = [{"what": "30分以内に一次回答", "valid_until": None},
                   {"what": "代替機を常設", "valid_until": (today + dt.timedelta(days=5)).isoformat(),
                    "reason": "繁忙期", "approved_by": "部長"},
                   {"what": "特別価格", "valid_until": (today + dt.timedelta(days=30)).isoformat()},
                   {"what": "来年の話", "valid_until": (today + dt.timedelta(days=31)).isoformat()},
                   {"what": "もう終わった", "valid_until": (today - dt.timedelta(days=1)).isoformat()}]
    docs = [("C001", "customer", old, {"customer": "株式会社青葉物流", "owner": "森", "commitments": commitments}),
            ("M1", "manual", old, {}), ("M2", "manual", fresh_day, {}), ("INC-1", "case", old, {}),
            ("INC-2", "case", old, {})]
    for sid, kind, updated, meta in docs:
        session.add(Document(source_id=sid, source_path=f"{sid}.txt", kind=kind, title=f"{sid} の題", content_hash=sid,
                             meta=meta, updated_at=updated))
    session.add(Document(source_id="M0", source_path="M0.txt", kind="manual", title="旧版", content_hash="x",
                         meta={}, updated_at=old, retired_at=fresh_day))  # a retired version: never reported
    session.commit()
    _log(settings, "a", "q", now - dt.timedelta(days=10), ids=("INC-1", "M2"))
    _log(settings, "b", "q", now - dt.timedelta(days=100), ids=("M1",))  # too long ago

    unr = unretrieved_documents(session, 90, now=now, scope=TRUSTED)
    assert unr["documents"] == 5 and sorted(i["source_id"] for i in unr["items"]) == ["C001", "INC-2", "M1"]
    assert unr["by_kind"] == {"customer": 1, "case": 1, "manual": 1}
    assert unretrieved_documents(session, 90, kinds="manual", now=now, scope=TRUSTED)["never_retrieved"] == 1

    st = stale_documents(session, 365, settings.stale_kinds, now=now, scope=TRUSTED)  # manual, customer
    assert [i["source_id"] for i in st["items"]] == ["C001", "M1"] and st["items"][0]["age_days"] == 400
    assert stale_documents(session, 365, None, now=now, scope=TRUSTED)["stale"] == 4  # every kind: the cases too

    exp = expiring_commitments(session, 30, today=today, scope=TRUSTED)
    assert [(i["what"], i["days_left"]) for i in exp["items"]] == [("代替機を常設", 5), ("特別価格", 30)]
    assert exp["items"][0]["customer"] == "株式会社青葉物流" and exp["items"][0]["approved_by"] == "部長"


def test_report_modules_have_japanese_pages():
    static = Path(__file__).resolve().parent.parent / "api" / "static"
    leads = (static / "leads.html").read_text("utf-8")
    assert 'lang="ja"' in leads and "次に書くべき記事" in leads
    widget = (static / "widget.js").read_text("utf-8")
    for label in ("解決した", "役に立たなかった", "エスカレーションする", "自己解決", "検索結果"):
        assert label in widget
