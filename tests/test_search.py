"""End to end on the real sample data, real model, real SQLite and FAISS."""

from __future__ import annotations

import datetime as dt
import json
import os

import pytest
import yaml

from conftest import SAMPLES, SUPPORT_SET, run_cli


def _labeled(types: set[str]) -> list[tuple[str, str, set[str]]]:
    queries = [json.loads(line) for line in (SUPPORT_SET / "queries.jsonl").read_text(encoding="utf-8").splitlines() if line]
    rel: dict[str, set[str]] = {}
    for line in (SUPPORT_SET / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        qid, did, score = line.split("\t")
        if int(score) > 0:
            rel.setdefault(qid, set()).add(did)
    return [(q["_id"], q["text"], rel[q["_id"]]) for q in queries if q.get("type") in types and q["_id"] in rel]


def test_paraphrased_queries_find_a_past_case_with_the_same_resolution(use_home):
    from hikitsugi.search.service import search

    cases = _labeled({"paraphrase", "paraphrase_noword", "typo", "width", "vocab"})
    assert len(cases) >= 40
    hits = 0
    for _, text, relevant in cases:
        top = [r.source_id for r in search(text, use_home, k=5).results]
        hits += bool(relevant & set(top))
    assert hits / len(cases) >= 0.85, f"only {hits}/{len(cases)} paraphrased queries found a relevant result in the top 5"


def test_results_are_cards_with_resolution_and_highlight(use_home):
    from hikitsugi.search.service import search

    _, text, relevant = _labeled({"paraphrase"})[0]
    resp = search(text, use_home, k=10)
    ids = [r.source_id for r in resp.results]
    assert len(ids) == len(set(ids)), "one card per document"
    case = next(r for r in resp.results if r.kind == "case")
    assert case.resolution and case.occurred_at and case.url.endswith(case.source_id)
    assert any("<mark>" in r.snippet for r in resp.results)


def test_reingest_changes_nothing_and_embeds_nothing(use_home):
    from hikitsugi.index.update import ingest_paths
    from hikitsugi.search.retrieve import get_snapshot

    before = get_snapshot(use_home.index_dir).name
    report = ingest_paths([SAMPLES], use_home)
    assert (report.docs_added, report.docs_changed, report.docs_deleted, report.chunks_embedded) == (0, 0, 0, 0)
    assert report.snapshot is None and get_snapshot(use_home.index_dir).name == before


def test_customer_in_query_pins_commitments_and_marks_expired(make_home, model_dir, tmp_path):
    """Commitments are dated relative to today, so the test means the same on any day."""
    from hikitsugi.config import get_settings
    from hikitsugi.index.update import ingest_paths
    from hikitsugi.search.service import search

    today = dt.date.today()
    record = [{"id": "C900", "name": "株式会社みなと倉庫", "aliases": ["みなと倉庫さん"], "rank": "A", "owner": "森",
               "commitments": [
                   {"what": "先月までの特別価格", "valid_until": (today - dt.timedelta(days=1)).isoformat()},
                   {"what": "30分以内に一次回答", "valid_until": None},
                   {"what": "繁忙期の代替機", "valid_until": (today + dt.timedelta(days=100)).isoformat()}]}]
    (tmp_path / "customers.yaml").write_text(yaml.safe_dump(record, allow_unicode=True), encoding="utf-8")
    make_home("customer-dates-home")
    settings = get_settings()
    ingest_paths([tmp_path / "customers.yaml"], settings)
    resp = search("みなと倉庫さんの件で複合機が動かない", settings, k=5)
    assert resp.customer is not None and resp.customer.customer_id == "C900"
    assert [(c["what"], c["expired"]) for c in resp.customer.commitments] == [
        ("30分以内に一次回答", False), ("繁忙期の代替機", False), ("先月までの特別価格", True)]  # expired last
    by_param = search("複合機が動かない", settings, k=5, customer="C900")
    assert by_param.customer.customer_id == "C900" and by_param.customer.matched_by == "parameter"
    with pytest.raises(LookupError):
        search("複合機", settings, customer="存在しない顧客")


def test_homes_are_isolated(make_home, sample_home, model_dir, tmp_path):
    other = make_home("other-home")
    (tmp_path / "only.md").write_text("# 別チーム\n\n会議室の予約方法はポータルから行います。", encoding="utf-8")
    assert run_cli("ingest", str(tmp_path / "only.md"), env_home=other, model=model_dir).returncode == 0
    out = run_cli("search", "紙詰まり", "--json", env_home=other, model=model_dir)
    ids = [r["source_id"] for r in json.loads(out.stdout)["results"]]
    assert ids == ["only.md"]
    out = run_cli("search", "会議室の予約", "--json", env_home=sample_home, model=model_dir)
    assert "only.md" not in [r["source_id"] for r in json.loads(out.stdout)["results"]]
    os.environ["HIKITSUGI_HOME"] = str(sample_home)


def test_cli_ingest_reports_bad_files_and_ingests_the_rest(make_home, model_dir, tmp_path):
    home = make_home("bad-input-home")
    (tmp_path / "empty.md").write_bytes(b"")
    (tmp_path / "binary.csv").write_bytes(bytes(range(256)) * 50)
    (tmp_path / "壊れた.pdf").write_bytes(b"%PDF-1.4\n garbage")
    with (tmp_path / "巨大な履歴.csv").open("wb") as fh:  # 201 MB, sparse: costs no disk
        fh.truncate(201 * 2**20)
    (tmp_path / "良いファイル.md").write_text("# 手順\n\nトナーは右側の扉を開けて交換します。", encoding="utf-8")
    res = run_cli("ingest", str(tmp_path), "--json", env_home=home, model=model_dir)
    assert res.returncode == 1
    assert "empty.md: empty file" in res.stderr and "binary.csv: binary data" in res.stderr
    assert "壊れた.pdf" in res.stderr and "巨大な履歴.csv: 201 MB is larger than the 200 MB limit" in res.stderr
    report = json.loads(res.stdout)
    assert report["docs_added"] == 1 and report["files_failed"] == 4
    out = run_cli("search", "トナー交換", "--json", env_home=home, model=model_dir)
    assert json.loads(out.stdout)["results"][0]["source_id"] == "良いファイル.md"


def test_cli_search_errors_are_clear(use_home, sample_home, model_dir):
    res = run_cli("search", "   ", env_home=sample_home, model=model_dir)
    assert res.returncode == 2 and "query is empty" in res.stderr


def test_customer_named_in_a_query_is_the_longest_name_written_there():
    """The bigram table must pick what the old scan of every name picked: the longest name or
    alias written in the query, the earliest record among equally long ones, never an id
    inside free text — and the parameter by id or by name."""
    from hikitsugi.search.customer import NameTable

    table = NameTable()
    for name, sid, is_id in [("c100", "C100", True), ("みなと", "C100", False), ("株式会社みなと倉庫", "C100", False),
                             ("c200", "C200", True), ("みなと倉庫", "C200", False), ("北斗", "C300", False),
                             ("北斗", "C400", False), ("c300", "C300", True)]:
        table.add(name, sid, is_id)
    assert table.in_query("株式会社みなと倉庫の複合機") == "C100"  # 9 characters beat 5 and 3
    assert table.in_query("みなと倉庫さんから電話") == "C200"
    assert table.in_query("北斗さんの件") == "C300"  # equally long: the earlier record
    assert table.in_query("c300 の件で") is None  # ids are given as a parameter, not found in free text
    assert table.in_query("紙が詰まる") is None
    assert table.exact["みなと倉庫"] == "C200" and table.exact["c300"] == "C300"


def test_a_generation_with_dense_rows_searches_exactly_as_one_without(use_home, tmp_path):
    """Generations of >= lexical_dense_min_rows chunks store their common tokens' BM25 rows densely
    (the 1,000,000-chunk fast path). Forced on the samples, a second generation of the same rows
    must hold dense rows and answer every search with the same cards and scores."""
    from hikitsugi.index.snapshot import build_snapshot
    from hikitsugi.search.retrieve import get_snapshot
    from hikitsugi.search.service import search
    from hikitsugi.storage.database import session_for

    plain = get_snapshot(use_home.index_dir)
    assert not plain.lexical._dense_of  # the samples are far below the 50,000-chunk default
    other = use_home.model_copy(update={"home": tmp_path / "dense-home", "database_url": use_home.db_url,
                                        "lexical_dense_min_rows": 0, "lexical_dense_share": 0.02})
    session = session_for(other.db_url)
    try:  # a replica-style build (rows and name given): nothing is published to the shared database
        name = build_snapshot(session, other, chunk_ids=plain.chunk_ids, name="gen-dense-rows")
    finally:
        session.close()
    dense = get_snapshot(other.index_dir)
    assert dense.name == name and len(dense.lexical._dense_of) > 20
    for q in ["複合機で紙が何度も詰まる", "請求書を再発行したい", "ログインできない", "ざいこ まいなす"]:
        for mode in ("lexical", "hybrid"):
            a, b = search(q, use_home, k=10, mode=mode), search(q, other, k=10, mode=mode)
            assert [r.source_id for r in a.results] == [r.source_id for r in b.results], (q, mode)
            assert all(abs(x.score - y.score) < 1e-3 for x, y in zip(a.results, b.results)), (q, mode)
