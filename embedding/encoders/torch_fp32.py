"""sentence-transformers on torch, fp32: the reference the int8 encoder is guarded against.

Kept selectable (``encoder = "torch-fp32"``) and used by the quality guard of
``hikitsugi model build``. Slower than the ONNX int8 backend (docs/benchmarks.md), and it
imports torch, whose OpenMP pool must not spin (``OMP_WAIT_POLICY=PASSIVE``, set in
:mod:`hikitsugi`)."""

from __future__ import annotations

import logging
import threading

import numpy as np

from hikitsugi.embedding.encoders.base import Encoder
from hikitsugi.embedding.threads import configure_torch


class TorchFp32Encoder(Encoder):
    name = "torch-fp32"

    def __init__(self, path: str, query_prompt: str, passage_prompt: str, threads: int = 0) -> None:
        super().__init__(path, query_prompt, passage_prompt, threads)
        configure_torch(threads)
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.utils.logging.disable_progress_bar()
        logging.getLogger("sentence_transformers").setLevel(logging.WARNING)
        self.model = SentenceTransformer(path, device="cpu", local_files_only=True)
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self._lock = threading.Lock()

    def _embed(self, texts: list[str]) -> np.ndarray:
        with self._lock:  # torch already uses both cores; parallel calls only thrash
            vecs = self.model.encode(texts, batch_size=len(texts), normalize_embeddings=True,
                                     convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vecs, dtype=np.float32)
