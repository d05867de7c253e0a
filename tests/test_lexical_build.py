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
