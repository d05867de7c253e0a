"""The default encoder (ONNX Runtime, int8) and its quality guard against fp32.

The int8 model used here is the one ``hikitsugi model build`` installed (scripts/setup.sh
runs it): these tests read the guard record it wrote and check the model against fp32 on
real Japanese text, and build a corrupted model to show the guard refuses to install it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from hikitsugi.config import Settings
from hikitsugi.embedding.build import GuardFailed, install_int8
from hikitsugi.embedding.encoders import create
from hikitsugi.embedding.encoders.onnx_int8 import ONNX_DIR, ModelNotBuilt, OnnxInt8Encoder, guard_record

pytestmark = pytest.mark.slow

PAIRS = [  # (query, the passage that answers it): a tiny guard set of our own
    ("プリンターで紙詰まりが何度も起きる", "給紙トレイの用紙を揃え、ローラーを清掃すると紙詰まりが減ります。"),
    ("パスワードを忘れてログインできない", "ログイン画面の「パスワードを忘れた方」から再設定メールを送れます。"),
    ("請求書を再発行してほしい", "請求書の再発行は管理画面の請求履歴からPDFでダウンロードできます。"),
    ("スキャンしたのにメールが届かない", "スキャン to メールが届かない場合はSMTPサーバーの設定と宛先を確認します。"),
    ("トナーの交換方法", "トナーカートリッジは前面カバーを開け、レバーを押して引き出して交換します。"),
    ("無線LANにつながらない", "Wi-Fi接続できないときはルーターを再起動し、SSIDとパスワードを確認してください。"),
    ("保守契約の更新はいつ", "保守契約は毎年4月1日に自動更新され、更新の30日前に案内を送付します。"),
    ("画面が真っ暗で何も表示されない", "表示パネルが消灯した場合は省エネモードの解除ボタンを押してください。"),
    ("コピーに黒い線が入る", "原稿ガラスとスリットガラスの汚れが黒い筋の原因です。柔らかい布で拭きます。"),
    ("FAXが送信エラーになる", "FAX送信エラーは回線種別の設定と宛先番号の外線発信番号を確認します。"),
]


def _guard_set(root: Path) -> Path:
    (root / "qrels").mkdir(parents=True)
    with (root / "corpus.jsonl").open("w", encoding="utf-8") as fh:
        for i, (_, p) in enumerate(PAIRS):
            fh.write(json.dumps({"_id": f"d{i}", "title": "", "text": p}, ensure_ascii=False) + "\n")
    with (root / "queries.jsonl").open("w", encoding="utf-8") as fh:
        for i, (q, _) in enumerate(PAIRS):
            fh.write(json.dumps({"_id": f"q{i}", "text": q}, ensure_ascii=False) + "\n")
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n"
                                             + "".join(f"q{i}\td{i}\t1\n" for i in range(len(PAIRS))))
    return root


def test_default_encoder_is_int8_built_and_guarded(model_dir) -> None:
    assert Settings().encoder == "onnx-int8"
    rec = guard_record(model_dir)
    assert rec is not None and rec["passed"], "setup must have built and guarded the int8 model"
    assert rec["dataset"] == "jsquad-dev" and rec["queries"] >= 4000
    assert abs(rec["mrr10_reference"] - rec["mrr10_candidate"]) <= 0.005
    assert rec["cosine_mean"] >= 0.99


def test_int8_matches_fp32_on_japanese_text(model_dir) -> None:
    int8 = create("onnx-int8", str(model_dir), "query: ", "passage: ", 1)
    fp32 = create("torch-fp32", str(model_dir), "query: ", "passage: ", 0)
    texts = [t for pair in PAIRS for t in pair]
    a, b = int8.embed_passages(texts, 8), fp32.embed_passages(texts, 8)
    assert a.shape == b.shape == (len(texts), 384)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-4)
    assert float((a * b).sum(1).mean()) >= 0.99
    # the query side: every query still finds its own passage first
    q = int8.embed_queries([p[0] for p in PAIRS])
    p = int8.embed_passages([p[1] for p in PAIRS])
    assert ((q @ p.T).argmax(1) == np.arange(len(PAIRS))).all()
    # alone or in a batch, a text gets nearly the same vector: dynamic quantization scales
    # activations per batch, so its neighbours move it a little (measured 0.9990), never far
    alone = int8.embed_passages(texts[:1])[0]
    assert float(alone @ a[0]) >= 0.995


def test_guard_refuses_to_install_a_corrupted_model(model_dir, tmp_path) -> None:
    """A real quantized model whose weights were damaged after quantization fails the guard
    and leaves no int8 model behind; the undamaged one passes on the same set."""
    import onnx
    from onnx import numpy_helper

    work = tmp_path / "model"
    shutil.copytree(model_dir, work, ignore=shutil.ignore_patterns(ONNX_DIR))
    settings = Settings(home=tmp_path / "home", model=str(work), model_guard_dataset=str(_guard_set(tmp_path / "gs")))

    def damage(path: Path) -> None:
        m = onnx.load(str(path))
        for init in m.graph.initializer:
            arr = numpy_helper.to_array(init)
            if arr.dtype == np.int8 and arr.ndim == 2:  # quantized weight matrices
                rng = np.random.default_rng(0)
                init.CopyFrom(numpy_helper.from_array(rng.permutation(arr.reshape(-1)).reshape(arr.shape),
                                                      init.name))
        onnx.save(m, str(path))

    with pytest.raises(GuardFailed, match="not installed"):
        install_int8(work, settings, tamper=damage)
    assert not (work / ONNX_DIR).exists()
    with pytest.raises(ModelNotBuilt, match="hikitsugi model build"):
        OnnxInt8Encoder(str(work), "query: ", "passage: ")
    rec = install_int8(work, settings)
    assert rec["passed"] and rec["cosine_mean"] >= 0.99 and guard_record(work)["passed"]
    assert OnnxInt8Encoder(str(work), "query: ", "passage: ").embed_query("紙詰まり").shape == (384,)
