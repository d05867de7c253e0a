"""Search latency at scale, against today's path in the same run.

    python -m bench.scale --chunks 1000000 [--queries 200] [--keep DIR] [--json]

The samples are ingested for real, then the index is filled up to N chunks with synthetic
ones (a real chunk's text with a sentence of another chunk mixed in; its vector the
normalized mix of the two chunks' real vectors plus a little noise, :mod:`bench.synth`;
manual chunks get synthetic sentence vectors the same way), written with bulk inserts.
Embedding a million chunks would take days on two cores.

Then, in one fresh process: the product's path (the configured encoder, by default ONNX
int8, and the generation's own vector index: exact below ``ann_min_rows``, else the
approximate index with the query plan) and **today's path** (sentence-transformers fp32
on torch and an exact scan over the same vectors, the same generation otherwise) answer
the same labeled support queries, embedded for real, interleaved query by query, hybrid,
k = 10, one client; then 8 concurrent clients (threads) for each. Serving RSS is the
peak resident memory of a separate process that loads the product's path and answers
the queries (the build and the baseline are not in it).

``--json`` prints one object: chunks, p50_ms, p95_ms, baseline_p50_ms, baseline_p95_ms,
rss_mib, qps_8_clients (and baseline_*, ratios, the time per stage).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import resource
import shutil
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def build_corpus(settings, n_chunks: int, seed: int = 7) -> None:
    """Fill settings' home with about n_chunks chunks: the samples, then synthetic ones."""
    from sqlalchemy import func, insert, select

    from hikitsugi.bench.synth import mixed_vectors
    from hikitsugi.embedding.encoder import model_id
    from hikitsugi.index.snapshot import build_snapshot, embed_hash, sentence_kinds, sentence_texts
    from hikitsugi.index.update import ingest_paths
    from hikitsugi.storage.database import session_for
    from hikitsugi.storage.schema import Chunk, Document, Embedding

    ingest_paths([REPO / "data" / "samples"], settings)
    session = session_for(settings.db_url)
    mid = model_id(settings)
    rows = session.execute(select(Chunk.text, Chunk.context, Document.kind, Document.customer, Document.meta,
                                  Document.occurred_at, Embedding.vector)
                           .join(Document, Document.id == Chunk.document_id)
                           .join(Embedding, (Embedding.embed_hash == Chunk.embed_hash) & (Embedding.model == mid))).all()
    base = np.stack([np.frombuffer(r.vector, dtype=np.float32) for r in rows])
    kinds = set(sentence_kinds(settings))
    per_doc = 4
    n_docs = max(0, (n_chunks - len(rows)) // per_doc)
    doc_id = int(session.scalar(select(func.max(Document.id))) or 0) + 1
    chunk_id = int(session.scalar(select(func.max(Chunk.id))) or 0) + 1
    rng = random.Random(seed)
    t0 = time.perf_counter()
    block_docs = 25_000
    for start in range(0, n_docs, block_docs):
        nd = min(block_docs, n_docs - start)
        vecs, src_of = mixed_vectors(base, nd * per_doc, seed=seed + start)
        sent_noise = mixed_vectors(base, nd * per_doc, seed=seed + start + 1)[0]
        docs, chunks, embs = [], [], []
        for i in range(nd):
            di = start + i
            src = rows[rng.randrange(len(rows))]
            title = f"合成 {di}"
            docs.append(dict(id=doc_id, source_id=f"SYN-{di:07d}", source_path="synthetic", kind=src.kind, title=title,
                             customer=src.customer, occurred_at=src.occurred_at, content_hash=str(di),
                             meta=src.meta or {}))
            for j in range(per_doc):
                c = i * per_doc + j
                a, b = int(src_of[c]), rng.randrange(len(rows))
                text = rows[a].text + "\n" + rows[b].text.split("\n")[0]
                h = f"syn-{di}-{j}"
                chunks.append(dict(id=chunk_id, document_id=doc_id, ordinal=j, context=rows[a].context, text=text,
                                   embed_hash=h, ocr=False))
                embs.append(dict(model=mid, embed_hash=h, vector=vecs[c].tobytes()))
                chunk_id += 1
                if src.kind in kinds:  # per-sentence vectors, as embed_missing would store them
                    for t in sentence_texts(title, rows[a].context, text):
                        sv = 0.7 * vecs[c] + 0.3 * sent_noise[rng.randrange(len(sent_noise))]
                        embs.append(dict(model=mid, embed_hash=embed_hash(mid, t),
                                         vector=(sv / np.linalg.norm(sv)).astype(np.float32).tobytes()))
            doc_id += 1
        session.execute(insert(Document), docs)
        session.execute(insert(Chunk), chunks)
        session.execute(insert(Embedding).prefix_with("OR IGNORE") if settings.db_url.startswith("sqlite")
                        else insert(Embedding), embs)
        session.commit()
        _log(f"synthetic chunks: {(start + nd) * per_doc:,} / {n_docs * per_doc:,} ({time.perf_counter() - t0:.0f}s)")
    session.close()
    session = session_for(settings.db_url)
    t = time.perf_counter()
    build_snapshot(session, settings)
    _log(f"snapshot of {len(rows) + n_docs * per_doc:,} chunks built in {time.perf_counter() - t:.1f}s")
    session.close()


def _queries(n: int) -> list[str]:
    qfile = REPO / "eval" / "datasets" / "support-ja" / "queries.jsonl"
    qs = [json.loads(x)["text"] for x in qfile.read_text(encoding="utf-8").splitlines() if x.strip()]
    return (qs * (n // max(1, len(qs)) + 1))[:n]


def baseline_settings(settings, base_home: Path):
    """Today's path over the same generation: fp32 torch encoder, exact scan. The generation's
    files are linked into a home of their own whose manifest says ``exact``; the database is shared."""
    from hikitsugi.index.snapshot import current_name

    name = current_name(settings.index_dir)
    src, dst = settings.index_dir / name, base_home / "index" / name
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.name != "manifest.json" and not (dst / f.name).exists():
            (dst / f.name).symlink_to(f)
    manifest = json.loads((src / "manifest.json").read_text())
    manifest["vector_index"] = "exact"
    (dst / "manifest.json").write_text(json.dumps(manifest))
    (base_home / "index" / "CURRENT").write_text(name)
    return settings.model_copy(update={"home": base_home, "database_url": settings.db_url, "encoder": "torch-fp32"})


def _pct(xs: list[float], p: float) -> float:
    return round(float(np.percentile(xs, p)), 1)


def _eight_clients(settings, queries: list[str]) -> tuple[float, float]:
    from hikitsugi.search.service import search

    def one(q: str) -> float:
        t = time.perf_counter()
        search(q, settings, k=10)
        return (time.perf_counter() - t) * 1000

    t = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        lat = list(pool.map(one, queries))
    return round(len(queries) / (time.perf_counter() - t), 1), _pct(lat, 95)


def peak_rss_mib() -> int:
    """This process's peak resident memory (VmHWM). Not ``ru_maxrss``: Linux keeps that across
    exec, so a spawned child would report its parent's peak (the corpus build)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _serving_rss(settings_json: str, n_queries: int) -> dict:
    """In a fresh process: load the product's path, answer the queries; peak RSS."""
    from hikitsugi.config import Settings
    from hikitsugi.search.service import search

    s = Settings.model_validate_json(settings_json)
    for q in _queries(n_queries):
        search(q, s, k=10)
    return {"rss_mib": peak_rss_mib()}


def _measure(settings_json: str, base_home: str, n_queries: int) -> dict:
    from hikitsugi.config import Settings
    from hikitsugi.search.retrieve import get_snapshot
    from hikitsugi.search.service import search

    s = Settings.model_validate_json(settings_json)
    b = baseline_settings(s, Path(base_home))
    queries = _queries(n_queries)
    snap = get_snapshot(s.index_dir)
    for q in queries[:5]:  # warm both paths: model loads, index pages, caches
        search(q, s, k=10)
        search(q, b, k=10)
    lat: dict[str, list[float]] = {"new": [], "base": []}
    parts: dict[str, dict[str, list[float]]] = {"new": {}, "base": {}}
    for i, q in enumerate(queries):
        # alternate who goes first: the second to answer a query finds its postings and
        # rows warm (measured: lexical 7.9 vs 1.6 ms, phrase 21 vs 2 ms when "new" always went first)
        order = (("new", s), ("base", b)) if i % 2 == 0 else (("base", b), ("new", s))
        for key, st in order:
            t = time.perf_counter()
            resp = search(q, st, k=10)
            lat[key].append((time.perf_counter() - t) * 1000)
            for stage, v in resp.timings_ms.items():
                parts[key].setdefault(stage, []).append(v)
    qps_new, c8_p95_new = _eight_clients(s, queries)
    qps_base, c8_p95_base = _eight_clients(b, queries)
    out = {
        "chunks": int(snap.manifest["chunks"]), "vector_index": snap.dense.kind, "encoder": s.encoder,
        "queries": len(queries),
        "p50_ms": _pct(lat["new"], 50), "p95_ms": _pct(lat["new"], 95),
        "baseline_p50_ms": _pct(lat["base"], 50), "baseline_p95_ms": _pct(lat["base"], 95),
        "qps_8_clients": qps_new, "baseline_qps_8_clients": qps_base,
        "p95_ms_8_clients": c8_p95_new, "baseline_p95_ms_8_clients": c8_p95_base,
        "stages_ms_median": {k: round(statistics.median(v), 2) for k, v in parts["new"].items()},
        "baseline_stages_ms_median": {k: round(statistics.median(v), 2) for k, v in parts["base"].items()},
    }
    return out


def run(n_chunks: int, n_queries: int, keep: Path | None = None) -> dict:
    from hikitsugi.config import get_settings
    from hikitsugi.eval.home import throwaway_home

    with throwaway_home(get_settings(), "hikitsugi-scale-", keep) as s:
        if not (s.home / "index" / "CURRENT").exists():
            t = time.perf_counter()
            build_corpus(s, n_chunks)
            _log(f"corpus built in {time.perf_counter() - t:.0f}s")
        base_home = s.home / "baseline-home"
        shutil.rmtree(base_home, ignore_errors=True)
        ctx = mp.get_context("spawn")
        with ctx.Pool(1) as pool:
            rss = pool.apply(_serving_rss, (s.model_dump_json(), min(n_queries, 50)))
        with ctx.Pool(1) as pool:
            out = pool.apply(_measure, (s.model_dump_json(), str(base_home), n_queries))
        out.update(rss)
        out["ratios"] = {
            "p50": round(out["p50_ms"] / out["baseline_p50_ms"], 3),
            "p95": round(out["p95_ms"] / out["baseline_p95_ms"], 3),
            "qps_8_clients": round(out["qps_8_clients"] / max(out["baseline_qps_8_clients"], 1e-9), 2),
        }
        out["build_peak_rss_mib"] = peak_rss_mib()
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--keep", type=Path, default=None, help="Reuse/keep this home between runs.")
    ap.add_argument("--json", action="store_true", help="One JSON object on stdout.")
    args = ap.parse_args()
    res = run(args.chunks, args.queries, args.keep)
    if args.json:
        print(json.dumps(res, ensure_ascii=False))
        return
    r = res["ratios"]
    print(f"{res['chunks']:,} chunks, {res['queries']} queries, hybrid k=10, encoder {res['encoder']}, "
          f"vector index {res['vector_index']}")
    print("| | this path | today's path (fp32 torch + exact) | ratio |")
    print("|---|---:|---:|---:|")
    print(f"| p50 ms | {res['p50_ms']} | {res['baseline_p50_ms']} | {r['p50']} |")
    print(f"| p95 ms | {res['p95_ms']} | {res['baseline_p95_ms']} | {r['p95']} |")
    print(f"| searches/s, 8 clients | {res['qps_8_clients']} | {res['baseline_qps_8_clients']} | {r['qps_8_clients']} |")
    print(f"| serving RSS MiB | {res['rss_mib']} | | |")
    print("stages (median ms): " + ", ".join(f"{k} {v}" for k, v in res["stages_ms_median"].items()))
    print("today's stages (median ms): " + ", ".join(f"{k} {v}" for k, v in res["baseline_stages_ms_median"].items()))


if __name__ == "__main__":
    main()
