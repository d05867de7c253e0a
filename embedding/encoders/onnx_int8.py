"""The default encoder: the same model exported to ONNX, weights quantized to int8, run by
ONNX Runtime. Built offline by ``hikitsugi model build`` (:mod:`hikitsugi.embedding.build`),
which installs it only when it passes the quality guard against the fp32 reference.

Why: a single query embeds 3.5–5× faster than sentence-transformers fp32 on torch
(docs/benchmarks.md, interleaved in one process), with mean cosine 0.996 to fp32 and the
same dense MRR@10 on jsquad-dev within the guard's 0.005. No torch import on this path:
tokenization is the model folder's own ``tokenizer.json`` (``tokenizers``), pooling is
the model's mean pooling over the attention mask, then L2 normalization.

ORT runs calls from several threads at once on one session, so there is no lock: with
``onnx_threads = 1`` (measured best on a shared 2-core box, :mod:`hikitsugi.embedding.threads`)
eight concurrent searches use both cores without an intra-op pool spinning between them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hikitsugi.embedding.encoders.base import Encoder
from hikitsugi.embedding.threads import ort_session

ONNX_DIR = "onnx"  # inside the sentence-transformers model folder (where ST and txtai look too)
INT8_FILE = "model_int8.onnx"
GUARD_FILE = "guard.json"  # the guard's result, written by the build next to the model


class ModelNotBuilt(RuntimeError):
    """The int8 model is missing (or failed its guard): run ``hikitsugi model build``."""


def int8_path(model_dir: str | Path) -> Path:
    return Path(model_dir) / ONNX_DIR / INT8_FILE


def guard_record(model_dir: str | Path) -> dict | None:
    """The guard result stored next to the int8 model, or None when there is none."""
    try:
        return json.loads((Path(model_dir) / ONNX_DIR / GUARD_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return None


class OnnxInt8Encoder(Encoder):
    name = "onnx-int8"

    def __init__(self, path: str, query_prompt: str, passage_prompt: str, threads: int = 1,
                 model_file: Path | None = None, workers: int = 2) -> None:
        super().__init__(path, query_prompt, passage_prompt, threads)
        self.workers = max(1, workers)
        from tokenizers import Tokenizer

        onnx_file = Path(model_file) if model_file else int8_path(path)
        if model_file is None:
            rec = guard_record(path)
            if not onnx_file.is_file() or rec is None or not rec.get("passed"):
                raise ModelNotBuilt(
                    f"{onnx_file}: no int8 model that passed the quality guard; run `hikitsugi model build` "
                    f"(or set HIKITSUGI_ENCODER=torch-fp32 to use the fp32 reference)")
        cfg = json.loads((Path(path) / "config.json").read_text())
        st_cfg = Path(path) / "sentence_bert_config.json"
        max_len = json.loads(st_cfg.read_text()).get("max_seq_length", 512) if st_cfg.exists() else 512
        self.tokenizer = Tokenizer.from_file(str(Path(path) / "tokenizer.json"))
        self.tokenizer.enable_truncation(int(max_len))
        pad_id = int(cfg.get("pad_token_id", 0))
        self.tokenizer.enable_padding(pad_id=pad_id, pad_token=self.tokenizer.id_to_token(pad_id) or "<pad>")
        self.session = ort_session(str(onnx_file), threads)
        self.input_names = {i.name for i in self.session.get_inputs()}
        self.dim = int(cfg["hidden_size"])

    def _encode(self, texts: list[str], prompt: str, batch_size: int) -> np.ndarray:
        """One text per call, whatever ``batch_size`` says: dynamic quantization scales the
        activations of a whole call at once, so in a batch a text's vector depended on its
        neighbours (cosine 0.9990 alone vs batched) — an incremental re-index then scored a
        passage 0.04 apart from a clean build of the same text (tests/test_reindex.py). Alone,
        the same text always gets the same vector, and nothing is padded; ``workers``
        calls still run side by side."""
        return super()._encode(texts, prompt, 1)

    def _embed(self, texts: list[str]) -> np.ndarray:
        enc = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.input_names:
            feed["token_type_ids"] = np.zeros_like(ids)
        hidden = self.session.run(None, feed)[0]
        m = mask[..., None].astype(np.float32)
        pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return pooled.astype(np.float32)
