"""Search features beyond ranking: filters inside retrieval, editable synonyms, guidance."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest


def _synthetic_home(settings, n_chunks: int, rare_every: int, seed: int = 3) -> list[str]:
    """n_chunks chunks with random unit vectors; every rare_every-th document is a manual, the rest cases."""
    from hikitsugi.embedding.encoder import model_id
    from hikitsugi.index.snapshot import build_snapshot
    from hikitsugi.storage.database import session_for
    from hikitsugi.storage.schema import Chunk, Document, Embedding

    rng = random.Random(seed)
    words = ["紙詰まり", "トナー", "ログイン", "請求書", "ルーター", "打刻", "スキャン", "FAX", "異音", "印刷"]
    session = session_for(settings.db_url)
    mid = model_id(settings)
    vecs = np.random.default_rng(seed).normal(size=(n_chunks, 384)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    rare = []
    docs = []
    for i in range(n_chunks):
        kind = "manual" if i % rare_every == 0 else "case"
        text = "、".join(rng.choice(words) for _ in range(6)) + f"。番号{i}"
        doc = Document(source_id=f"D{i:06d}", source_path="synthetic", kind=kind, title=f"文書{i}",
                       content_hash=str(i), meta={"status": "完了"})
        doc.chunks.append(Chunk(ordinal=0, context="", text=text, embed_hash=f"h{i}"))
        docs.append(doc)
        session.add(Embedding(model=mid, embed_hash=f"h{i}", vector=vecs[i].tobytes()))
        if kind == "manual":
            rare.append(f"D{i:06d}")
        if len(docs) == 5000:
            session.add_all(docs)
            session.commit()
            docs = []
    session.add_all(docs)
    session.commit()
    build_snapshot(session, settings)
    session.close()
    return rare


@pytest.mark.slow
def test_filter_matching_one_percent_of_50k_chunks_still_returns_its_best(make_home, model_dir):
    from hikitsugi.config import get_settings
    from hikitsugi.index.filters import Filters
    from hikitsugi.search.service import search

    make_home("filter-home")
    settings = get_settings()
    rare = _synthetic_home(settings, 50_000, rare_every=100)
    assert len(rare) == 500  # 1 %
    for mode in ("hybrid", "dense", "lexical"):
        resp = search("紙詰まり トナー", settings, k=10, mode=mode, filters=Filters(kinds=["manual"]))
        assert len(resp.results) == 10, mode
        assert all(r.kind == "manual" for r in resp.results)
    # The best manual for an exact text is found even though 99 % of the corpus is filtered away.
    target = rare[137]
    num = int(target[1:])
    resp = search(f"番号{num}", settings, k=5, mode="lexical", filters=Filters(kinds=["manual"]))
    assert resp.results[0].source_id == target
    # A filter that matches nothing returns nothing, without error.
    assert search("紙詰まり", settings, k=5, filters=Filters(kinds=["note"])).results == []


def test_synonyms_file_changes_lexical_matching_without_reembedding(make_home, model_dir, tmp_path):
    from hikitsugi.config import get_settings
    from hikitsugi.index.update import ingest_paths
    from hikitsugi.search.service import search

    home = make_home("synonym-home")
    (tmp_path / "a.md").write_text("# 対応記録\n\nお客様から苦情の電話があり、上長が折り返しました。", encoding="utf-8")
    (tmp_path / "b.md").write_text("# 別件\n\n複合機のトナーを交換しました。", encoding="utf-8")
    syn = home / "synonyms.yaml"
    syn.write_text("- [複合機, プリンター]\n", encoding="utf-8")
    settings = get_settings()
    ingest_paths([tmp_path], settings)
    before = search("クレーム", settings, k=2, mode="lexical")
    assert [r.source_id for r in before.results] == []
    syn.write_text("- [クレーム, 苦情]\n", encoding="utf-8")
    os.utime(syn, (syn.stat().st_atime, syn.stat().st_mtime + 5))
    after = search("クレーム", settings, k=2, mode="lexical")
    assert [r.source_id for r in after.results] == ["a.md"]
    report = ingest_paths([tmp_path], settings)
    assert report.chunks_embedded == 0


def test_guidance_escalates_on_rules_and_self_resolves_on_known_problems(use_home):
    from hikitsugi.search.service import search

    danger = search("コピー機の裏から煙が出ていて焦げ臭いと電話", use_home, k=5)
    assert danger.guidance.action == "escalate" and "life_or_body" in danger.guidance.rules
    meaning = search("ネットで晒してやると怒っている", use_home, k=5)
    assert meaning.guidance.action == "escalate" and "social_media" in meaning.guidance.rules
    legal = search("弁護士から連絡させると言われました", use_home, k=5)
    assert "legal" in legal.guidance.rules
    invoice = search("請求書の金額が30万円になっているが正しいか", use_home, k=5)
    assert "damage_claim" not in invoice.guidance.rules
    known = search("トレイ2から給紙すると紙が何度も詰まる", use_home, k=5)
    assert known.guidance.action == "self_resolve" and known.guidance.steps and known.guidance.based_on
    unknown = search("社員食堂のメニューを教えて", use_home, k=5)
    assert unknown.guidance.action == "escalate" and not unknown.guidance.rules


def test_vip_commitment_of_customer_in_context_escalates(use_home):
    from hikitsugi.search.service import search

    resp = search("青葉物流さんから複合機が動かないと電話", use_home, k=5)
    assert resp.customer is not None and resp.customer.customer_id == "C001"
    assert resp.guidance.action == "escalate" and "vip_commitment" in resp.guidance.rules
