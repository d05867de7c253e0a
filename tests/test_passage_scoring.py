"""How a passage is scored beyond one vector and bag-of-grams: per-sentence vectors for
manual passages, and the phrase re-rank for verbatim wording."""

from __future__ import annotations

from hikitsugi.ingest.normalize import fold_for_lexical, normalize
from hikitsugi.search.rerank import phrase_bonus, query_grams, rerank

FAQ = ("# 勤怠クラウド よくある質問\n\n"
       "勤怠クラウドのパスワードは90日ごとに変更が必要です。"
       "打刻の修正は月末締めの3営業日前まで申請できます。"
       "有給休暇は入社日から半年後に10日付与されます。"
       "スマートフォンアプリはiOS 15以降とAndroid 10以降に対応しています。"
       "CSV出力の文字コードはShift_JISとUTF-8から選べます。\n")


def _fold(text: str) -> str:
    return fold_for_lexical(normalize(text))


def test_phrase_bonus_rewards_verbatim_wording_not_scattered_characters():
    grams = query_grams(normalize("トナーカートリッジの交換方法"))
    verbatim = _fold("MX-3100 のトナーカートリッジの交換方法を説明します。")
    scattered = _fold("交換用の部品一覧。カートリッジ、トナー、方法は別紙。")
    assert phrase_bonus(grams, verbatim) >= 0.9  # 12 grams, all found, 2 free
    assert phrase_bonus(grams, scattered) <= 0.3  # only the words トナー and カートリッジ match


def test_phrase_bonus_ignores_particles_and_endings():
    # 「わからない」「されてない」 are in countless passages: hiragana-only grams never count
    assert query_grams(normalize("わからない されてない")) == set()
    fused = {1: 2.0, 2: 1.9}
    assert rerank(fused, normalize("わからない"), {1: "x", 2: "わからない"}, 1.0) == fused


def test_phrase_rerank_lifts_the_passage_that_holds_the_query_phrase():
    fused = {10: 2.00, 11: 1.95}
    texts = {10: _fold("印刷がかすれる場合はドラムを清掃します。"),
             11: _fold("エラーコード E-302 給紙トレイの用紙サイズ不一致が表示されたら、トレイのガイドを合わせます。")}
    out = rerank(fused, normalize("E-302 給紙トレイの用紙サイズ不一致"), texts, 1.0)
    assert out[11] > out[10]
    assert rerank(fused, normalize("E-302 給紙トレイの用紙サイズ不一致"), texts, 0.0) == fused


def _doc_id(settings, source_id: str) -> int:
    from sqlalchemy import select

    from hikitsugi.storage.database import session_for
    from hikitsugi.storage.schema import Document

    session = session_for(settings.db_url)
    try:
        return session.scalar(select(Document.id).where(Document.source_id == source_id,
                                                        Document.retired_at.is_(None)))
    finally:
        session.close()


def test_manual_sentences_get_vectors_without_reembedding_chunks(make_home, model_dir, tmp_path):
    """Turning sentence vectors on embeds only the sentences; a question about one fact of
    a many-fact manual passage then scores that passage higher than its averaged vector does."""
    from hikitsugi.config import get_settings
    from hikitsugi.index.update import ingest_paths
    from hikitsugi.search.retrieve import get_snapshot, retrieve_candidates

    make_home("sentence-home")
    (tmp_path / "faq.md").write_text(FAQ, encoding="utf-8")
    (tmp_path / "note.md").write_text("# メモ\n\n有給の件で総務から電話。折り返し済み。", encoding="utf-8")
    settings = get_settings()
    off = ingest_paths([tmp_path], settings.model_copy(update={"sentence_kinds": ""}))
    assert off.chunks_embedded == 2 and off.sentences_embedded == 0
    assert get_snapshot(settings.index_dir).manifest["sentences"] == 0

    on = ingest_paths([tmp_path], settings)  # default: manual
    assert on.chunks_embedded == 0, on  # chunk vectors are reused
    assert on.sentences_embedded == 5 + 2, on  # five FAQ sentences; the .md note is a manual too
    assert on.snapshot, "changing sentence_kinds must rebuild the index"
    snap = get_snapshot(settings.index_dir)
    assert snap.manifest["sentence_kinds"] == ["manual"] and snap.manifest["sentences"] == 7

    qn = normalize("有給休暇って入社してからいつもらえますか")
    chunk_only, _, _ = retrieve_candidates(qn, settings, snap, "dense", 10, None, sentences=False)
    by_sentence, _, _ = retrieve_candidates(qn, settings, snap, "dense", 10, None)
    faq_row = next(r for r in range(len(snap.chunk_ids)) if int(snap.doc_ids[r]) == _doc_id(settings, "faq.md"))
    assert by_sentence.dense[faq_row] > chunk_only.dense[faq_row] + 0.02, (by_sentence.dense, chunk_only.dense)
    again = ingest_paths([tmp_path], settings)
    assert (again.chunks_embedded, again.sentences_embedded, again.snapshot) == (0, 0, None)
