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

from hikitsugi.config import Settings
from hikitsugi.eval.home import throwaway_home
from hikitsugi.eval.retrieval import evaluate_rankings, load_dataset, sweep_row

# "_sentences": False scores by chunk vectors only; "_phrase": apply the phrase re-rank.
VARIANTS: dict[str, dict] = {
    "dense, chunk vectors only": {"_mode": "dense", "_sentences": False},
    "dense (+ sentence vectors)": {"_mode": "dense"},
    "lexical": {"_mode": "lexical"},
    "lexical, no synonyms": {"_mode": "lexical", "_no_synonyms": True},
    "rrf k=60": {"fusion": "rrf", "rrf_k": 60},
    "minmax 0.3 dense": {"fusion": "minmax", "dense_weight": 0.3},
    "minmax 0.5 dense": {"fusion": "minmax", "dense_weight": 0.5},
    "minmax 0.7 dense": {"fusion": "minmax", "dense_weight": 0.7},
    "zscore 0.5 dense": {"fusion": "zscore", "dense_weight": 0.5},
    "zscore 0.6 dense": {"fusion": "zscore", "dense_weight": 0.6},
    "zscore 0.65 dense": {"fusion": "zscore", "dense_weight": 0.65},
    "zscore 0.7 dense": {"fusion": "zscore", "dense_weight": 0.7},
    "zscore 0.65, top lists only": {"fusion": "zscore", "dense_weight": 0.65, "_top_lists_only": True},
    "zscore 0.65, chunk vectors only": {"fusion": "zscore", "dense_weight": 0.65, "_sentences": False},
    "zscore 0.65, chunk vectors + phrase": {"fusion": "zscore", "dense_weight": 0.65, "_sentences": False,
                                            "_phrase": True},
    "zscore 0.65 + phrase 0.5": {"fusion": "zscore", "dense_weight": 0.65, "phrase_weight": 0.5, "_phrase": True},
    "zscore 0.65 + phrase 1.0 (default)": {"fusion": "zscore", "dense_weight": 0.65, "phrase_weight": 1.0,
                                           "_phrase": True},
    "zscore 0.65 + phrase 2.0": {"fusion": "zscore", "dense_weight": 0.65, "phrase_weight": 2.0, "_phrase": True},
}


def fusion_sweep(root: Path, settings: Settings, limit: int = 0) -> dict[str, dict[str, float]]:
    from hikitsugi.index.lexical import tokenize
    from hikitsugi.index.update import ingest_paths
    from hikitsugi.ingest.normalize import normalize
    from hikitsugi.search import rerank as phrase
    from hikitsugi.search.cards import rank_documents
    from hikitsugi.search.fuse import fuse
    from hikitsugi.search.rerank import phrase_texts
    from hikitsugi.search.retrieve import (
        Candidates,
        get_snapshot,
        retrieve_candidates,
        with_sentences,
    )
    from hikitsugi.storage.database import session_for
    from hikitsugi.storage.schema import Document

    ds = load_dataset(root)
    with throwaway_home(settings, "hikitsugi-fusion-") as s:
        ingest_paths(ds.ingest, s, kind=ds.kind)
        snap = get_snapshot(s.index_dir)
        session = session_for(s.db_url)
        sid = dict(session.execute(select(Document.id, Document.source_id)).all())
        # keys starting with "_" steer this sweep; the rest are settings of the variant
        variant_settings = {name: s.model_copy(update={k: x for k, x in v.items() if not k.startswith("_")})
                            for name, v in VARIANTS.items()}
        qids = [q for q in ds.queries if ds.qrels.get(q)][: limit or None]
        runs: dict[str, dict[str, list[str]]] = {v: {} for v in VARIANTS}
        try:
            for qid in tqdm(qids, desc="fusion sweep", unit="q", file=sys.stderr, disable=None):
                qn = normalize(ds.queries[qid])
                chunk_only, qv, _ = retrieve_candidates(qn, s, snap, "hybrid", s.candidates, None, sentences=False)
                by_sentences = with_sentences(chunk_only, snap, qv)
                plain = None
                for name, v in VARIANTS.items():
                    cands = by_sentences if v.get("_sentences", True) else chunk_only
                    vs = variant_settings[name]
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
                        fused = fuse(Candidates(cands.dense, cands.lexical) if v.get("_top_lists_only") else cands, vs)
                        if v.get("_phrase"):
                            fused = phrase.rerank(fused, qn, phrase_texts(session, snap, fused, vs.phrase_depth),
                                                  vs.phrase_weight)
                    runs[name][qid] = [sid[d] for d, _ in rank_documents(fused, snap, 10)]
        finally:
            session.close()
        return {name: sweep_row(evaluate_rankings(r, ds.qrels))
                for name, r in runs.items()}
