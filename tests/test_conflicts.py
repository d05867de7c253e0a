"""Contradictions found at ingest, shown on result cards, listed and resolved by leads.

The sample home (``sample_home``: data/samples ingested once, detection run by the
after-generation hook as in production) holds the labeled conflict set
(eval/datasets/conflicts-ja): the detection figures are measured on it, and the cards,
the lead routes and the CLI are exercised over real HTTP.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest

from conftest import REPO, run_cli
from hikitsugi.insights.contradiction import compare

LABELS = REPO / "eval" / "datasets" / "conflicts-ja" / "labels.yaml"
E203 = "E-203が出て止まった。電源を入れ直してもらっていい？"


# ------------------------------------------------------------------ the scorer, by hand

def test_scorer_signals_and_their_reasons():
    advice = "ブラウザのキャッシュとCookieを削除してもらい、管理画面に入れた。"
    v = compare(advice, "キャッシュの削除では入れない。https とポート 8443 で接続して解決。", kind="case_case")
    assert v.score >= 1.0 and v.signals[0].name == "negated" and "キャッシュ" in v.signals[0].text
    # a failure cue that is a condition, not a report, is no contradiction
    v = compare("トナーカートリッジのICチップの接点を清掃して解消。",
                "ICチップの接点を清掃して解消（前回と同じ）。改善しない場合はカートリッジ交換を手配する。", kind="case_case")
    assert v.score < 0 and {s.name for s in v.signals} <= {"agrees", "confirmed"}
    # a value inside the advice's bound is no contradiction; one outside is
    commit = "問い合わせには30分以内に一次回答（担当からの折り返し）をする"
    assert compare(commit, "30分以内の一次回答ルールどおり、受付から20分で折り返した。", kind="commitment_note",
                   advice_dates=("2025-04-01", None), newer_date="2026-09-24").score < 1.0
    v = compare(commit, "一次回答の目標を30分から1時間に見直すことで合意した。", kind="commitment_note",
                advice_dates=("2025-04-01", None), newer_date="2026-09-15")
    assert v.score >= 1.0 and "value" in {s.name for s in v.signals}
    # a commitment that ends when the record says is as recorded; earlier, it is a conflict
    trial = "工場の夜勤帯（22時～翌6時）の打刻機障害を当社夜間当番が電話で受け付ける（試行）"
    assert compare(trial, "夜勤帯の電話受付の試行が12/15で終わる。", kind="commitment_note",
                   advice_dates=("2025-10-01", "2026-12-15"), newer_date="2026-11-02").score < 0
    v = compare(trial, "夜勤帯（22時～6時）の電話受付は、試行期間を待たずに11月末で打ち切りと決定。", kind="commitment_note",
                advice_dates=("2025-10-01", "2026-12-15"), newer_date="2026-11-10")
    assert v.score >= 1.0 and "ended_early" in {s.name for s in v.signals}
    assert all(s.text for s in v.signals)  # every signal says why, in words a lead reads


# ------------------------------------------------------------------ measured on the labeled set

def test_detection_precision_and_recall_on_the_labeled_set(sample_home, model_dir):
    """Strict precision (every pair detected anywhere in the samples counts), recall over the
    labeled conflicts; targets 0.8 / 0.7 on all pairs and on the test half (threshold and
    anchor were chosen on the dev half)."""
    r = run_cli("eval", "conflicts", "--labels", str(LABELS), "--use-home", "--json", env_home=sample_home,
                model=model_dir)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    print("conflicts:", {k: out[k] for k in ("precision", "recall", "pairs", "detected", "unlabeled_detections")},
          "test:", out["test"])
    assert {"precision", "recall", "pairs"} <= set(out)
    assert out["conflicts_labeled"] >= 20 and out["look_alikes_labeled"] >= 20 and out["pairs"] >= 40
    assert {k for k, v in out["by_kind"].items() if v["conflicts"] >= 5} == {"case_case", "manual_newer",
                                                                             "commitment_note"}
    assert out["precision"] >= 0.8 and out["recall"] >= 0.7
    assert out["test"]["precision"] >= 0.8 and out["test"]["recall"] >= 0.7
    for m in out["misses"]:  # what a miss looks like is reported with the pair and its signals
        assert m["a"] and m["b"] and "signals" in m


# ------------------------------------------------------------------ over HTTP

def _key(sample_home, user, role, customer=None):
    from hikitsugi.access.principals import assign, create_key
    from hikitsugi.config import get_settings
    from hikitsugi.storage.database import session_for

    os.environ["HIKITSUGI_HOME"] = str(sample_home)
    session = session_for(get_settings().db_url)
    try:
        key = create_key(session, user, role, "tests")[1]
        if customer:
            assign(session, user, customer, by="tests")
    finally:
        session.close()
    return key


def test_a_card_in_an_open_conflict_says_so(server, api_keys):
    """The manual's E-203 step and the newer case that forbids it: each card links the other."""
    with httpx.Client(base_url=server, headers={"X-API-Key": api_keys["other"]}, timeout=60) as c:
        res = c.post("/search", json={"query": E203, "k": 5}).json()["results"]
    older = [(r, n) for r in res for n in r["conflicts"] if n["side"] == "older"]
    assert older, [(r["source_id"], r["conflicts"]) for r in res]
    card, notice = next((r, n) for r, n in older if r["kind"] == "manual")
    assert notice["message"] == "この手順と矛盾する新しい事例があります"
    assert card["source_id"].endswith("mx3100_troubleshooting.md") and "4.1" in card["context"]
    assert notice["other"]["source_id"] == "TEC-26-033" and notice["other"]["url"] == "/documents/TEC-26-033"
    newer = next(r for r in res if r["source_id"] == "TEC-26-033")
    assert any(n["side"] == "newer" and n["other"]["source_id"].endswith("mx3100_troubleshooting.md")
               for n in newer["conflicts"])


def test_pinned_commitment_in_conflict_and_a_hidden_other_side(server, api_keys):
    """C001's 30-minute promise changed in a sales note: the agent in charge sees the note's
    title and link; an agent not assigned to C001 is told there is a newer note but not what."""
    for who, sees in (("agent", True), ("other", False)):
        with httpx.Client(base_url=server, headers={"X-API-Key": api_keys[who]}, timeout=60) as c:
            ctx = c.post("/search", json={"query": "折り返しの約束", "customer": "C001", "k": 3}).json()["customer"]
        com = next(x for x in ctx["commitments"] if x["what"].startswith("問い合わせには30分以内"))
        assert com["conflicts"], com
        n = com["conflicts"][0]
        assert n["message"] == "この特別対応と矛盾する新しい対応メモがあります"
        if sees:
            assert n["other"]["source_id"] == "ACT-26-0412" and not n["other"]["hidden"]
        else:
            assert n["other"]["hidden"] and n["other"]["source_id"] is None and n["other"]["url"] is None
            assert "一次回答の目標" not in json.dumps(n, ensure_ascii=False)


def test_conflicts_list_respects_each_sides_access(server, api_keys, sample_home):
    """A lead not assigned to a customer sees its commitment's *what* but not the note that
    changed it; a lead assigned to it sees both; agents get 403."""
    free_lead = api_keys["lead"]
    c001_lead = _key(sample_home, "lead_c001", "lead", "C001")
    with httpx.Client(base_url=server, timeout=60) as c:
        assert c.get("/conflicts", headers={"X-API-Key": api_keys["agent"]}).status_code == 403
        free = c.get("/conflicts", params={"kind": "commitment_note"}, headers={"X-API-Key": free_lead}).json()
        full = c.get("/conflicts", params={"kind": "commitment_note"}, headers={"X-API-Key": c001_lead}).json()
    pick = lambda out: next(i for i in out["items"] if i["a"].get("source_id") == "C001"  # noqa: E731
                            and (i["a"].get("text") or "").startswith("問い合わせには30分以内"))
    f, g = pick(free), pick(full)
    assert f["b"]["hidden"] and "text" not in f["b"] or f["b"].get("text") is None
    assert f["a"]["text"].startswith("問い合わせには30分以内") and "山口" not in json.dumps(f, ensure_ascii=False)
    assert all(not w["quote_b"] for w in f["why"])
    assert not g["b"]["hidden"] and "1時間" in g["b"]["text"]
    with httpx.Client(base_url=server, timeout=60, headers={"X-API-Key": free_lead}) as c:
        one = c.get(f"/conflicts/{f['id']}")
        assert one.status_code == 200 and one.json()["b"] == f["b"] and one.json()["a"] == f["a"]  # same view alone
        assert c.get("/conflicts/0").status_code == 404
        r = c.post(f"/conflicts/{f['id']}/resolve", json={"winner": "b"})
        assert r.status_code == 403  # cannot decide what it cannot see


def test_resolve_is_stored_audited_and_survives_redetection(server, api_keys, sample_home, model_dir):
    with httpx.Client(base_url=server, timeout=60, headers={"X-API-Key": api_keys["admin"]}) as c:
        items = c.get("/conflicts", params={"kind": "case_case"}).json()["items"]
        target = next(i for i in items if i["a"]["source_id"] == "TEC-24-011" and i["b"]["source_id"] == "TEC-25-034")
        assert c.post(f"/conflicts/{target['id']}/resolve", json={"winner": "both"}).status_code == 422  # say when
        r = c.post(f"/conflicts/{target['id']}/resolve",
                   json={"winner": "b", "note": "ファームウェア v5.0 系は更新で直す。節電キーの案内はやめる。"})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "resolved" and r.json()["resolution"] == "b" and r.json()["resolved_by"] == "admin"
        assert c.post("/conflicts/0123abcd/resolve", json={"winner": "a"}).status_code == 404
        audit = c.get("/admin/audit", params={"action": "conflict.resolve"}).json()["events"]
        assert any(e["target"] == f"conflict:{target['id']}" and e["detail"]["winner"] == "b" for e in audit)
    # the next detection finds the same pair again and keeps the decision
    r = run_cli("conflicts", "detect", env_home=sample_home, model=model_dir)
    assert r.returncode == 0, r.stderr
    r = run_cli("conflicts", "--status", "resolved", "--json", env_home=sample_home, model=model_dir)
    done = json.loads(r.stdout)["items"]
    assert any(i["id"] == target["id"] and i["resolution"] == "b" for i in done)


def test_conflicts_cli(sample_home, model_dir):
    r = run_cli("conflicts", env_home=sample_home, model=model_dir)
    assert r.returncode == 0 and "古い:" in r.stdout and "なぜ:" in r.stdout, r.stderr
    ids = [i["id"] for i in json.loads(run_cli("conflicts", "--json", env_home=sample_home, model=model_dir).stdout)["items"]]
    r = run_cli("conflicts", "resolve", ids[0], "--winner", "both", env_home=sample_home, model=model_dir)
    assert r.returncode == 2 and "note" in r.stderr
    r = run_cli("conflicts", "--status", "bogus", env_home=sample_home, model=model_dir)
    assert r.returncode == 2


# ------------------------------------------------------------------ the hook and the table

def test_a_failing_hook_never_unpublishes_the_generation(make_home, tmp_path, monkeypatch):
    from hikitsugi.config import get_settings
    from hikitsugi.index.update import ingest_paths
    from hikitsugi.search.service import search

    home = make_home("hook-fails")
    (tmp_path / "m.md").write_text("# 手順\n\n紙詰まりはトレイを引き出して取り除く。\n", encoding="utf-8")
    monkeypatch.setenv("HIKITSUGI_AFTER_GENERATION", "hikitsugi.no_such_module:detect")
    report = ingest_paths([tmp_path], get_settings())
    assert report.snapshot and any("after-generation hook hikitsugi.no_such_module:detect failed" in p
                                   for p in report.problems), report.problems
    assert search("紙詰まり", get_settings(), k=1).results  # the new generation serves
    assert home


def test_conflicts_migration_matches_the_model(tmp_path):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from hikitsugi.storage.conflicts import Conflict
    from hikitsugi.storage.database import engine_for

    engine = engine_for(f"sqlite:///{Path(tmp_path) / 'm.db'}")
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Conflict.metadata)
    mine = [d for d in diffs if "conflicts" in repr(d)]
    assert mine == [], mine
