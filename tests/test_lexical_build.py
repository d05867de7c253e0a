"""The lean BM25 builder scores exactly as bm25s (Lucene BM25) does, and round-trips."""

from __future__ import annotations

import bm25s
import numpy as np

from hikitsugi.index.lexical import LexicalIndex, tokenize

TEXTS = [
    "複合機の給紙トレイで紙詰まりが発生する。ローラーを清掃してください。",
    "スキャンしたデータがメールで届かない場合は、SMTPサーバーの設定を確認します。",
    "トナーカートリッジの交換手順：前面カバーを開けてレバーを押します。",
    "請求書の再発行は管理画面の請求履歴からPDFでダウンロードできます。",
    "パスワードを忘れた場合は、ログイン画面から再設定メールを送信してください。",
    "紙詰まりが何度も起きるときは用紙の湿気と給紙ローラーの摩耗を疑います。",
    "", "!!!", "Wi-Fi 接続エラー E-102 が表示される",
]
QUERIES = ["紙詰まり", "メールが届かない", "トナー交換", "請求書 再発行 PDF", "E-102", "存在しない語彙"]


def test_lean_build_matches_bm25s_and_round_trips(tmp_path) -> None:
    ref = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
    ref.index([tokenize(t) or ["\u0000"] for t in TEXTS], show_progress=False)
    lean = LexicalIndex.build(iter(TEXTS), 1.2, 0.75)
    lean.save(tmp_path / "lex")
    loaded = LexicalIndex.load(tmp_path / "lex")
    mask = np.array([i % 2 == 0 for i in range(len(TEXTS))])
    for q in QUERIES:
        known = [t for t in tokenize(q) if t in ref.vocab_dict]
        expected = np.asarray(ref.get_scores(known)) if known else np.zeros(len(TEXTS))
        assert np.allclose(loaded.scores(tokenize(q)), expected, atol=1e-5)
        assert np.allclose(loaded.scores(tokenize(q), mask), expected * mask, atol=1e-5)
    rows, scores = loaded.search(tokenize("紙詰まり"), 3)
    assert set(rows[:2].tolist()) == {0, 5} and (scores > 0).all()


def test_dense_rows_of_common_tokens_score_as_the_posting_lists(tmp_path) -> None:
    """Tokens in at least a share of the rows are stored again as dense rows (a large index's
    fast path); a query must score exactly as through the posting lists, with or without a mask."""
    texts = TEXTS * 40
    lean = LexicalIndex.build(iter(texts), 1.2, 0.75)
    lean.save(tmp_path / "plain")
    lean.save(tmp_path / "dense", dense_share=0.2, dense_min_rows=0)
    plain, dense = LexicalIndex.load(tmp_path / "plain"), LexicalIndex.load(tmp_path / "dense")
    assert not plain._dense_of and dense._dense_of  # 紙, 詰, 詰ま ... occur in 2 of 9 texts
    mask = np.array([i % 3 != 0 for i in range(len(texts))])
    used = 0
    for q in QUERIES + ["紙詰まりとローラー", "請求書 請求書"]:
        tids = {dense.vocab[t] for t in tokenize(q) if t in dense.vocab}
        used += any(dense.dense_row(t) is not None for t in tids)
        assert np.allclose(dense.scores(tokenize(q)), plain.scores(tokenize(q)), atol=1e-5)
        assert np.allclose(dense.scores(tokenize(q), mask), plain.scores(tokenize(q), mask), atol=1e-5)
    assert used >= 3  # the dense path was taken


def test_top_is_exact_on_large_score_arrays() -> None:
    """The sampled threshold must never drop a true top-n row: many zeros, many ties, a few
    rows scored only (the fallback), and n larger than the rows with any score."""
    rng = np.random.default_rng(3)
    cases = [rng.random(200_000).astype(np.float32) * (rng.random(200_000) < 0.3),
             np.round(rng.random(120_000) * 5).astype(np.float32),  # heavy ties
             np.zeros(80_000, np.float32)]
    cases[2][[5, 70_000, 123]] = [0.5, 2.0, 1.0]
    for scores in cases:
        for n in (1, 10, 100, 1000):
            rows, got = LexicalIndex.top(scores, n)
            positive = np.sort(scores[scores > 0])[::-1]
            assert np.array_equal(got, positive[:n])  # the same scores, best first
            assert np.array_equal(scores[rows], got) and len(set(rows.tolist())) == len(rows)
