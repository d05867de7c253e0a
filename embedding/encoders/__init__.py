"""Encoder backends, one small class each behind :class:`~hikitsugi.embedding.encoders.base.Encoder`
(the txtai shape: a folder of backends, a small base and a factory).

* ``onnx-int8`` (default): ONNX Runtime, int8 weights, built and guarded by
  ``hikitsugi model build``.
* ``torch-fp32``: sentence-transformers on torch, the fp32 reference.
"""

from __future__ import annotations

from hikitsugi.embedding.encoders.base import Encoder

BACKENDS = ("onnx-int8", "torch-fp32")


def create(backend: str, path: str, query_prompt: str, passage_prompt: str, threads: int = 0,
           workers: int = 2) -> Encoder:
    """The encoder ``backend`` over the model folder ``path``; ``workers`` batches at once
    (ONNX only: torch parallelizes inside one call)."""
    if backend == "onnx-int8":
        from hikitsugi.embedding.encoders.onnx_int8 import OnnxInt8Encoder

        return OnnxInt8Encoder(path, query_prompt, passage_prompt, threads or 1, workers=workers)
    if backend == "torch-fp32":
        from hikitsugi.embedding.encoders.torch_fp32 import TorchFp32Encoder

        return TorchFp32Encoder(path, query_prompt, passage_prompt, threads)
    raise ValueError(f"encoder must be one of {', '.join(BACKENDS)}, not '{backend}' (setting HIKITSUGI_ENCODER)")
