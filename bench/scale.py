"""Latency at scale: a 100,000-chunk index built from the sample corpus, queried warm.

Embedding 100k chunks on 2 cores would take hours, so the synthetic corpus is made from
the samples: each synthetic chunk is a real sample chunk's text with sentences from
other chunks mixed in, and its vector is the normalized mix of those chunks' real
vectors (sentence vectors of manual chunks likewise). Queries are the labeled support queries, embedded for real on every call.
Reports p50/p95 and QPS for 1 and 8 concurrent clients, and where the time goes.

    python -m bench.scale --chunks 100000 --queries 200
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from sqlalchemy import select

REPO = Path(__file__).resolve().parent.parent


def build_corpus(settings, n_chunks: int, seed: int = 7) -> None:
    """Fill settings' home with n_chunks synthetic chunks derived from the ingested samples."""
    from hikitsugi.embedding.encoder import model_id
    from hikitsugi.index.snapshot import (
        build_snapshot,
        embed_hash,
        sentence_kinds,
        sentence_texts,
    )
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
    base = len(rows)
    rng = random.Random(seed)
    vecs = [np.frombuffer(r.vector, dtype=np.float32) for r in rows]
    per_doc = 4
    kinds = set(sentence_kinds(settings))
    stored: set[str] = set(session.scalars(select(Embedding.embed_hash).where(Embedding.model == mid)))
    batch_docs = []
    for i in range((n_chunks - base) // per_doc):
        src = rows[rng.randrange(base)]
        doc = Document(source_id=f"SYN-{i:06d}", source_path="synthetic", kind=src.kind, title=f"合成 {i}",
                       customer=src.customer, occurred_at=src.occurred_at, content_hash=str(i), meta=src.meta or {})
        for j in range(per_doc):
            a, b = rng.randrange(base), rng.randrange(base)
            text = rows[a].text + "\n" + rows[b].text.split("\n")[0]
            v = 0.8 * vecs[a] + 0.2 * vecs[b]
            v = (v / np.linalg.norm(v)).astype(np.float32)
            h = f"syn-{i}-{j}"
            doc.chunks.append(Chunk(ordinal=j, context=rows[a].context, text=text, embed_hash=h))
            session.add(Embedding(model=mid, embed_hash=h, vector=v.tobytes()))
            if src.kind in kinds:  # per-sentence vectors, as embed_missing would store them
                for t in sentence_texts(doc.title, rows[a].context, text):
                    sh = embed_hash(mid, t)
                    if sh not in stored:
                        sv = 0.7 * v + 0.3 * vecs[rng.randrange(base)]
                        session.add(Embedding(model=mid, embed_hash=sh,
                                              vector=(sv / np.linalg.norm(sv)).astype(np.float32).tobytes()))
                        stored.add(sh)
        batch_docs.append(doc)
        if len(batch_docs) >= 2000:
            session.add_all(batch_docs)
            session.commit()
            batch_docs = []
    session.add_all(batch_docs)
    session.commit()
    session.close()
    session = session_for(settings.db_url)
    t = time.perf_counter()
    build_snapshot(session, settings)
    print(f"snapshot of {n_chunks} chunks built in {time.perf_counter() - t:.1f}s", file=sys.stderr, flush=True)
    session.close()


def run(n_chunks: int, n_queries: int, keep: Path | None = None) -> dict:
    from hikitsugi.config import get_settings
    from hikitsugi.eval.home import throwaway_home
    from hikitsugi.search.retrieve import get_snapshot
    from hikitsugi.search.service import search

    settings = get_settings()
    with throwaway_home(settings, "hikitsugi-scale-", keep) as s:
        if not (s.home / "index" / "CURRENT").exists():
            build_corpus(s, n_chunks)
        chunks = int(get_snapshot(s.index_dir).manifest["chunks"])
        qfile = REPO / "eval" / "datasets" / "support-ja" / "queries.jsonl"
        queries = [json.loads(line)["text"] for line in qfile.read_text(encoding="utf-8").splitlines() if line]
        queries = (queries * (n_queries // max(1, len(queries)) + 1))[:n_queries]
        for q in queries[:5]:
            search(q, s, k=10)  # warm-up
        parts: dict[str, list[float]] = {}
        lat = []
        for q in queries:
            t = time.perf_counter()
            resp = search(q, s, k=10)
            lat.append((time.perf_counter() - t) * 1000)
            for key, v in resp.timings_ms.items():
                parts.setdefault(key, []).append(v)
        single_wall = sum(lat) / 1000

        def one(q: str) -> float:
            t = time.perf_counter()
            search(q, s, k=10)
            return (time.perf_counter() - t) * 1000

        t = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            lat8 = list(pool.map(one, queries))
        wall8 = time.perf_counter() - t
        pct = lambda xs, p: round(float(np.percentile(xs, p)), 1)  # noqa: E731
        return {
            "chunks": chunks,
            "queries": len(queries),
            "single_p50_ms": pct(lat, 50), "single_p95_ms": pct(lat, 95),
            "single_qps": round(len(queries) / single_wall, 1),
            "c8_p50_ms": pct(lat8, 50), "c8_p95_ms": pct(lat8, 95), "c8_qps": round(len(queries) / wall8, 1),
            "breakdown_ms_median": {k: round(statistics.median(v), 2) for k, v in parts.items()},
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--keep", type=Path, default=None, help="Reuse/keep this home between runs.")
    args = ap.parse_args()
    print(json.dumps(run(args.chunks, args.queries, args.keep), ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
