"""The quality guard an int8 model must pass before ``hikitsugi model build`` installs it.

Two checks against the fp32 reference (sentence-transformers on torch, same weights), on
the guard data set (jsquad-dev: 4,442 questions over 1,145 paragraphs, BEIR layout):

* dense MRR@10 (each question against every paragraph, cosine; the paragraph it was
  written from is the relevant one) within ``guard_max_mrr_drop`` (0.005) of fp32, either
  way (a quantized model that scores far *better* is not the same model either);
* mean cosine between the int8 and fp32 vectors of the same texts (every paragraph and
  question, with their prompts) at least ``guard_min_cosine`` (0.99).

It runs once per built model and its result is stored next to the model
(``onnx/guard.json``), so set-up does not pay it again; the fp32 reference vectors are
cached next to the fp32 model, so a rebuilt int8 model only embeds its own side.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from hikitsugi.embedding.encoders.base import Encoder


@dataclass
class GuardSet:
    name: str
    passages: list[str]  # "title\ntext", as the product embeds a titled chunk
    queries: list[str]
    relevant: list[set[int]]  # per query: passage indexes


def load_guard_set(root: Path, limit: int | None = None) -> GuardSet:
    """A BEIR folder (corpus.jsonl, queries.jsonl, qrels/test.tsv); ``limit`` keeps the first queries."""
    root = Path(root)
    ids: dict[str, int] = {}
    passages = []
    with (root / "corpus.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                d = json.loads(line)
                ids[str(d["_id"])] = len(passages)
                title = d.get("title") or ""
                passages.append(f"{title}\n{d['text']}" if title else d["text"])
    rel: dict[str, set[int]] = {}
    with (root / "qrels" / "test.tsv").open(encoding="utf-8") as fh:
        for row in csv.reader(fh, delimiter="\t"):
            if len(row) >= 3 and row[0] != "query-id" and row[1] in ids and float(row[2]) > 0:
                rel.setdefault(row[0], set()).add(ids[row[1]])
    queries, relevant = [], []
    with (root / "queries.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                q = json.loads(line)
                if str(q["_id"]) in rel:
                    queries.append(q["text"])
                    relevant.append(rel[str(q["_id"])])
    if limit:
        queries, relevant = queries[:limit], relevant[:limit]
    if not queries or not passages:
        raise ValueError(f"{root}: no labeled queries or no passages (need corpus.jsonl, queries.jsonl, qrels/test.tsv)")
    return GuardSet(root.name, passages, queries, relevant)


def mrr_at_10(q: np.ndarray, p: np.ndarray, relevant: list[set[int]]) -> float:
    total = 0.0
    for i in range(0, len(q), 512):
        sims = q[i:i + 512] @ p.T
        top = np.argsort(-sims, axis=1)[:, :10]
        for row, rel in zip(top, relevant[i:i + 512]):
            hit = next((rank for rank, j in enumerate(row, 1) if int(j) in rel), None)
            total += 1.0 / hit if hit else 0.0
    return total / len(q)


@dataclass
class GuardResult:
    dataset: str
    queries: int
    passages: int
    mrr10_reference: float
    mrr10_candidate: float
    mrr10_drop: float
    cosine_mean: float
    cosine_min: float
    max_mrr_drop: float
    min_cosine: float
    passed: bool
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        return (f"quality guard {verdict} on {self.dataset} ({self.queries} queries): dense MRR@10 "
                f"{self.mrr10_candidate:.4f} vs fp32 {self.mrr10_reference:.4f} (drop {self.mrr10_drop:+.4f}, "
                f"limit {self.max_mrr_drop}), mean cosine to fp32 {self.cosine_mean:.4f} (min {self.cosine_min:.4f}, "
                f"limit {self.min_cosine})")


def reference_vectors(make_reference, gs: GuardSet, cache: Path | None = None, batch_size: int = 32,
                      progress=None) -> tuple[np.ndarray, np.ndarray]:
    """(passage, query) vectors of the fp32 reference, cached in ``cache`` (next to the fp32
    model): the reference is the slow half of the guard (17 of 21 minutes on the busy
    2-core machine), and it only changes with the fp32 model, so a rebuilt or re-tuned
    int8 model is checked against the same vectors without recomputing them."""
    if cache is not None and cache.is_file():
        with np.load(cache) as arr:
            if arr["p"].shape[0] == len(gs.passages) and arr["q"].shape[0] == len(gs.queries):
                return arr["p"], arr["q"]
    enc = make_reference()
    if progress:
        progress(f"guard: embedding {len(gs.passages)} passages and {len(gs.queries)} queries ({enc.name})")
    p, q = enc.embed_passages(gs.passages, batch_size), enc.embed_queries(gs.queries, batch_size)
    if cache is not None:
        tmp = cache.with_suffix(".tmp.npz")
        np.savez(tmp, p=p, q=q)
        tmp.replace(cache)
    return p, q


def run_guard(reference: tuple[np.ndarray, np.ndarray], candidate: Encoder, gs: GuardSet,
              max_mrr_drop: float = 0.005, min_cosine: float = 0.99, batch_size: int = 32,
              progress=None) -> GuardResult:
    """Embed the guard set with the candidate and compare with the reference vectors."""
    t0 = time.perf_counter()
    if progress:
        progress(f"guard: embedding {len(gs.passages)} passages and {len(gs.queries)} queries ({candidate.name})")
    rp, rq = reference
    cp, cq = candidate.embed_passages(gs.passages, batch_size), candidate.embed_queries(gs.queries, batch_size)
    cos = np.concatenate([(rp * cp).sum(1), (rq * cq).sum(1)])
    mrr_ref, mrr_cand = mrr_at_10(rq, rp, gs.relevant), mrr_at_10(cq, cp, gs.relevant)
    drop = mrr_ref - mrr_cand
    passed = abs(drop) <= max_mrr_drop + 1e-12 and float(cos.mean()) >= min_cosine
    return GuardResult(gs.name, len(gs.queries), len(gs.passages), round(mrr_ref, 4), round(mrr_cand, 4),
                       round(drop, 4), round(float(cos.mean()), 4), round(float(cos.min()), 4), max_mrr_drop,
                       min_cosine, bool(passed), round(time.perf_counter() - t0, 1))
