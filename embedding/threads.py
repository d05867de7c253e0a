"""Thread settings for a shared 2-core box: no pool may spin-wait for work.

Measured (issue 14, and ``python -m bench.loaded``): with another process busy on the
other core, torch's OpenMP threads spin at every barrier and a single query embedding went
from ~50 ms to 1.0–1.6 s. Two rules follow:

* ``OMP_WAIT_POLICY=PASSIVE`` before torch (or faiss, also OpenMP) is loaded: set in
  :mod:`hikitsugi` itself, the first module any entry point imports; checked here.
* ``OPENBLAS_NUM_THREADS=1`` likewise: OpenBLAS's pool spins too; an exact scan of 5,000
  allowed rows took 43 ms with it on the busy machine and 1.0 ms on one thread.
* ONNX Runtime: ``intra_op_num_threads = onnx_threads`` (default 1, measured: a query at
  one thread was as fast as at two on a quiet machine and did not double under a hog on
  the other core; concurrent searches each get a core instead of sharing a pool), no
  inter-op pool, and spinning off (``session.intra_op.allow_spinning = 0``) for when
  more than one thread is configured.
"""

from __future__ import annotations

import os
import sys


def configure_torch(threads: int = 0) -> None:
    """Import torch with the passive wait policy in force; ``threads`` > 0 fixes its pool size."""
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    if threads:
        torch.set_num_threads(threads)


def ort_session_options(threads: int):
    """SessionOptions for a shared CPU: ``threads`` intra-op threads, no inter-op pool, no spinning."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, int(threads))
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    so.log_severity_level = 3
    return so


def ort_session(path: str, threads: int):
    import onnxruntime as ort

    return ort.InferenceSession(path, ort_session_options(threads), providers=["CPUExecutionProvider"])
