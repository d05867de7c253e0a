"""``hikitsugi eval fusion``: choose the lexical/dense fusion by measurement.

For each labeled query the two candidate lists are retrieved once (with the product's
own ``retrieve_candidates``), then every fusion variant is applied to the same lists
with the product's own ``fuse`` and ``rank_documents``. That makes a sweep over many
variants cost one pass of query embedding.
"""

from __future__ import annotations

import sys
from pathlib import Path

from sqlalchemy import select
from tqdm import tqdm

from eval.home import throwaway_home
from eval.retrieval import evaluate_rankings, load_dataset
from hikitsugi.config import Settings

VARIANTS: dict[str, dict] = {
    "dense": {"_mode": "dense"},
    "lexical": {"_mode": "lexical"},
    "lexical, no synonyms": {"_mode": "lexical", "_no_synonyms": True},
    "rrf k=60": {"fusion": "rrf", "rrf_k": 60},
    "minmax 0.3 dense": {"fusion": "minmax", "dense_weight": 0.3},
    "minmax 0.4 dense": {"fusion": "minmax", "dense_weight": 0.4},
    "minmax 0.5 dense": {"fusion": "minmax", "dense_weight": 0.5},
    "minmax 0.6 dense": {"fusion": "minmax", "dense_weight": 0.6},
    "minmax 0.7 dense": {"fusion": "minmax", "dense_weight": 0.7},
    "zscore 0.5 dense": {"fusion": "zscore", "dense_weight": 0.5},
    "zscore 0.6 dense": {"fusion": "zscore", "dense_weight": 0.6},
    "zscore 0.65 dense (default)": {"fusion": "zscore", "dense_weight": 0.65},
    "zscore 0.7 dense": {"fusion": "zscore", "dense_weight": 0.7},
    "zscore 0.65, top lists only": {"fusion": "zscore", "dense_weight": 0.65, "_top_lists_only": True},
}


def fusion_sweep(root: Path, settings: Settings, limit: int = 0) -> dict[str, dict[str, float]]:
    from index.lexical import tokenize
    from index.search import Candidates, fuse, get_snapshot, rank_documents, retrieve_candidates
    from index.store import Document, session_for
    from index.update import ingest_paths
    from ingest.normalize import normalize

    ds = load_dataset(root)
    with throwaway_home(settings, "hikitsugi-fusion-") as s:
        ingest_paths(ds.ingest, s)
        snap = get_snapshot(s.index_dir)
        session = session_for(s.db_url)
        sid = dict(session.execute(select(Document.id, Document.source_id)).all())
        session.close()
        # keys starting with "_" steer this sweep; the rest are settings of the variant
        variant_settings = {name: s.model_copy(update={k: x for k, x in v.items() if not k.startswith("_")})
                            for name, v in VARIANTS.items()}
        qids = [q for q in ds.queries if ds.qrels.get(q)][: limit or None]
        runs: dict[str, dict[str, list[str]]] = {v: {} for v in VARIANTS}
        for qid in tqdm(qids, desc="fusion sweep", unit="q", file=sys.stderr, disable=None):
            qn = normalize(ds.queries[qid])
            cands, _, _ = retrieve_candidates(qn, s, snap, "hybrid", s.candidates, None)
            top_lists = Candidates(cands.dense, cands.lexical)
            plain = None
            for name, v in VARIANTS.items():
                if v.get("_mode") == "dense":
                    fused = cands.dense
                elif v.get("_no_synonyms"):
                    if plain is None:
                        rows, scores = snap.lexical.search(tokenize(qn), s.candidates)
                        plain = {int(r): float(x) for r, x in zip(rows, scores)}
                    fused = plain
                elif v.get("_mode") == "lexical":
                    fused = cands.lexical
                else:
                    fused = fuse(top_lists if v.get("_top_lists_only") else cands, variant_settings[name])
                runs[name][qid] = [sid[d] for d, _ in rank_documents(fused, snap, 10)]
        return {name: {k: v for k, v in evaluate_rankings(r, ds.qrels, []).items() if not k.startswith("latency")}
                for name, r in runs.items()}
