"""What every encoder backend shares: prompts, length-sorted batching, one interface.

A backend turns texts (prompt already added) into L2-normalized float32 vectors; the
base adds the e5 prompts and orders a batch of passages by length first, so that texts
of similar length are padded together (a batch is as slow as its longest text). A backend
whose runtime releases the GIL and runs single-threaded (ONNX Runtime with one intra-op
thread) sets ``workers`` > 1: batches then run on that many threads at once, each on its
own core, with no thread pool spinning between calls.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class Encoder(ABC):
    """One embedding model on one runtime. ``name`` is the backend (``encoder`` setting)."""

    name = ""
    dim = 0
    workers = 1  # batches embedded at once (see module docstring)

    def __init__(self, path: str, query_prompt: str, passage_prompt: str, threads: int = 0) -> None:
        self.path = path
        self.query_prompt = query_prompt
        self.passage_prompt = passage_prompt
        self.threads = threads

    @abstractmethod
    def _embed(self, texts: list[str]) -> np.ndarray:
        """L2-normalized float32 vectors of one batch of texts (prompts included)."""

    def _encode(self, texts: list[str], prompt: str, batch_size: int) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        parts = [order[i:i + batch_size] for i in range(0, len(texts), max(1, batch_size))]

        def one(part: np.ndarray) -> None:
            out[part] = self._embed([prompt + texts[j] for j in part])

        if self.workers > 1 and len(parts) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(self.workers) as pool:
                list(pool.map(one, parts))
        else:
            for part in parts:
                one(part)
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self._encode([text], self.query_prompt, 1)[0]

    def embed_queries(self, texts: list[str], batch_size: int = 16) -> np.ndarray:
        return self._encode(texts, self.query_prompt, batch_size)

    def embed_passages(self, texts: list[str], batch_size: int = 16) -> np.ndarray:
        return self._encode(texts, self.passage_prompt, batch_size)
