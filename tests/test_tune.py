"""``hikitsugi eval tune``: defaults chosen on declared dev sets only, written to a file, applied explicitly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from conftest import REPO, run_cli


def test_declared_sets_keep_dev_and_test_apart():
    from hikitsugi.eval.tune import load_sets

    sets = load_sets(REPO / "eval" / "sets.yaml", REPO)
    names = {p.name for p in sets["dev"]}
    assert {"jsquad-dev", "jaquad-dev", "support-ja", "support-ja-kana"} <= names
    assert {p.name for p in sets["test"]} == {"jusetsu-ja", "jusetsu-ja-kana"}
    assert not names & {p.name for p in sets["test"]}


def test_a_set_cannot_be_dev_and_test(tmp_path):
    from hikitsugi.eval.tune import load_sets

    (tmp_path / "sets.yaml").write_text("dev: [a]\ntest: [a]\n", encoding="utf-8")
    with pytest.raises(ValueError, match="both dev and test"):
        load_sets(tmp_path / "sets.yaml", tmp_path)


def test_score_penalizes_a_hybrid_that_loses_to_a_single_retriever():
    from hikitsugi.eval.tune import score

    def m(d, lx, h):
        return {"dense": {"mrr@10": d, "hit@5": d}, "lexical": {"mrr@10": lx, "hit@5": lx},
                "hybrid": {"mrr@10": h, "hit@5": h}}

    fine, worst = score({"a": m(0.8, 0.7, 0.85), "b": m(0.6, 0.9, 0.9)})
    assert fine == pytest.approx((0.85 + 0.9) / 2) and worst == pytest.approx(0.0)
    losing, worst = score({"a": m(0.8, 0.7, 0.95), "b": m(0.6, 0.9, 0.85)})  # higher mean, loses on b
    assert losing < fine and worst == pytest.approx(-0.05)


def test_tune_chooses_on_dev_sets_only_and_apply_writes_the_defaults(make_home, tmp_path):
    """End to end on a tiny dev set: the test set named in the sets file does not even exist,
    so reading it would fail; the output names what was chosen; applying writes a YAML the
    settings load as their defaults."""
    from hikitsugi.config import _tuned_defaults  # noqa: F401  (the loader the settings use)
    from hikitsugi.eval.tune import TUNED_KEYS, apply_tuned

    dev = tmp_path / "dev"
    (dev / "qrels").mkdir(parents=True)
    docs = {"d1": ("トナー", "トナーの交換は右側の扉を開けて行います。"),
            "d2": ("紙詰まり", "給紙ローラーの摩耗で紙が詰まることがあります。"),
            "d3": ("ログイン", "パスワードを忘れた場合は管理者が再発行します。")}
    (dev / "corpus.jsonl").write_text("".join(json.dumps({"_id": i, "title": t, "text": x}, ensure_ascii=False) + "\n"
                                              for i, (t, x) in docs.items()), encoding="utf-8")
    (dev / "queries.jsonl").write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in [
        {"_id": "q1", "text": "トナーを替えたい"}, {"_id": "q2", "text": "かみが つまる"},
        {"_id": "q3", "text": "パスワード忘れた"}]), encoding="utf-8")
    (dev / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\nq3\td3\t1\n")
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "sets.yaml").write_text(f"dev: [{dev}]\ntest: [{tmp_path / 'no-such-test-set'}]\n",
                                                 encoding="utf-8")
    home = make_home("tune-home")
    out = tmp_path / "tuned.json"
    res = run_cli("eval", "tune", "--sets", str(tmp_path / "eval" / "sets.yaml"), "--out", str(out),
                  "--cache", str(tmp_path / "cache"), "--no-thresholds", env_home=home)
    assert res.returncode == 0, res.stderr
    result = json.loads(out.read_text(encoding="utf-8"))
    assert [Path(p).name for p in result["dev_sets"]] == ["dev"]
    assert result["metrics_chosen"]["dev"]["hybrid"]["mrr@10"] == 1.0
    assert set(result["chosen"]) >= {"dense_weight", "fusion", "phrase_weight", "reading_weight", "sentence_kinds"}
    assert any(t.get("setting") == "dense_weight" for t in result["trace"])
    target = tmp_path / "tuned.yaml"
    chosen = apply_tuned(out, target)
    assert set(chosen) <= set(TUNED_KEYS)
    assert yaml.safe_load(target.read_text(encoding="utf-8")) == chosen


def test_settings_take_their_defaults_from_the_applied_tuning():
    from hikitsugi.config import Settings, _tuned_defaults

    tuned = _tuned_defaults()
    defaults = Settings.model_fields
    for key, value in tuned.items():
        assert defaults[key].default == value, key
