"""Thread settings for a shared 2-core box: no pool spins while waiting for work."""

from __future__ import annotations

import os
import subprocess
import sys

from hikitsugi.config import Settings
from hikitsugi.embedding.threads import ort_session_options

def _env(**extra: str) -> dict[str, str]:
    drop = ("OMP_WAIT_POLICY", "OPENBLAS_NUM_THREADS")
    return {**{k: v for k, v in os.environ.items() if k not in drop}, **extra}


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, check=True,
                          timeout=300).stdout.strip()


def test_passive_wait_policy_in_force_before_torch_is_imported() -> None:
    # every entry point imports the hikitsugi package first; torch must not be loaded before it
    out = _run("import sys, hikitsugi, os; print(os.environ.get('OMP_WAIT_POLICY'), "
               "os.environ.get('OPENBLAS_NUM_THREADS'), 'torch' in sys.modules, 'numpy' in sys.modules)")
    assert out == "PASSIVE 1 False False"
    out = _run("import hikitsugi.embedding.encoders.torch_fp32, os, torch; print(os.environ['OMP_WAIT_POLICY'])")
    assert out == "PASSIVE"


def test_explicit_wait_policy_is_respected() -> None:
    out = subprocess.run([sys.executable, "-c", "import hikitsugi, os; print(os.environ['OMP_WAIT_POLICY'])"],
                         env=_env(OMP_WAIT_POLICY="ACTIVE"), capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ACTIVE"


def test_search_path_never_imports_torch(use_home) -> None:
    """The default (int8) encoder serves queries without torch: no OpenMP pool to spin and
    ~400 MiB less resident memory per server."""
    code = ("import sys; from hikitsugi.config import get_settings; from hikitsugi.search.service import search; "
            "r = search('紙詰まりが直らない', get_settings(), k=3); "
            "print(len(r.results) > 0, 'torch' in sys.modules, 'sentence_transformers' in sys.modules)")
    assert _run(code) == "True False False"


def test_onnx_session_options_one_thread_no_spinning() -> None:
    so = ort_session_options(Settings().onnx_threads)
    assert so.intra_op_num_threads == 1 and so.inter_op_num_threads == 1
    assert so.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert ort_session_options(2).intra_op_num_threads == 2
