"""``hikitsugi eval tune``: choose every retrieval default on the dev sets, all at once.

The sets are declared in ``eval/sets.yaml``: only its ``dev`` sets and the earlier half of
its ``dev`` history are read here; the ``test`` sets are never touched. The procedure:

1. Each dev set is indexed once with the product's own ingest (``--cache DIR`` keeps the
   indexed homes, so a re-run after a code change only rebuilds the index generation,
   and after a model change re-embeds only what changed).
2. Every labeled query is run once through the product's retrieval code and everything a
   setting can change is kept for every chunk row: the cosine by chunk vector and by best
   sentence, the same for the dense text of a query typed in kana, BM25 of the surface
   field, of the synonym terms and of the reading field. The candidate lists of any
   setting are then cut from these with the product's own ``fuse``, phrase re-rank,
   ``rank_documents`` and card folding — so a sweep costs no embedding.
3. Coordinate search from the current defaults over :data:`GRID`, two rounds. A
   configuration's score is the mean of hybrid MRR@10 over the dev sets, minus a large
   penalty wherever hybrid falls more than 0.005 below the better single retriever (on
   MRR@10 or hit@5) on any dev set. A change is kept only when it gains more than
   ``MIN_GAIN`` — a robust default beats a noisy peak.
4. The self-resolve threshold: the lowest at which 自己解決 answers point at a relevant case
   at least 90 % of the time on the dev support sets, and at which the earlier half of the
   dev history gets at most 5 % wrong suggestions (the stricter of the two).

Output: one JSON file (``--out``): the chosen settings, the previous ones, every dev
set's metrics under both, and the search trace. Applying it is a separate, explicit step
(``hikitsugi eval tune --apply FILE`` writes ``hikitsugi/defaults/tuned.yaml``, which the
settings take their defaults from). docs/retrieval.md has the procedure and the last output.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from tqdm import tqdm

from hikitsugi.config import Settings
from hikitsugi.eval.retrieval import NO_ANSWER, QueryRun, evaluate_runs, fold_keys, load_dataset, sweep_row

TUNED_KEYS = ("sentence_kinds", "synonym_weight", "reading_weight", "reading_weight_other", "reading_rewrite",
              "reading_rewrite_lexical",
              "fusion", "dense_weight", "dense_weight_reading", "fusion_adaptive", "phrase_weight",
              "self_resolve_threshold")
GRID: dict[str, list] = {
    "sentence_kinds": ["manual", ""],
    "synonym_weight": [0.0, 0.3],
    "reading_weight": [0.0, 0.5, 1.0, 2.0],
    "reading_weight_other": [0.0, 0.1, 0.3],
    "reading_rewrite": [True, False],
    "reading_rewrite_lexical": [True, False],
    "fusion": ["zscore", "minmax", "rrf"],
    "dense_weight": [0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8],
    "dense_weight_reading": [-1.0, 0.2, 0.35, 0.5],
    "fusion_adaptive": [0.0, 0.1, 0.2, 0.3],
    "phrase_weight": [0.0, 0.5, 1.0, 2.0],
}
INPUT_KEYS = ("sentence_kinds", "synonym_weight", "reading_weight", "reading_weight_other", "reading_rewrite",
              "reading_rewrite_lexical", "prf_weight")
MIN_GAIN = 0.0005
NEVER_LOSE = 0.005  # hybrid may trail the better single retriever by at most this
PENALTY = 10.0


def load_sets(path: Path, repo: Path) -> dict[str, Any]:
    spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    out = {"dev": [(repo / p).resolve() for p in spec.get("dev") or []],
           "test": [(repo / p).resolve() for p in spec.get("test") or []],
           "histories": {k: (repo / v).resolve() for k, v in (spec.get("histories") or {}).items()}}
    if not out["dev"]:
        raise ValueError(f"{path}: declares no dev set")
    overlap = set(out["dev"]) & set(out["test"])
    if overlap:
        raise ValueError(f"{path}: a set cannot be both dev and test: {sorted(map(str, overlap))}")
    return out


# --------------------------------------------------------------------------- per-query evidence
@dataclass
class QueryEvidence:
    """Everything any tuned setting can change, for one query, over every chunk row."""

    qid: str
    text: str
    typed: bool
    dense_chunk: np.ndarray
    dense_sent: np.ndarray
    rewrite_chunk: np.ndarray | None
    rewrite_sent: np.ndarray | None
    lex: np.ndarray
    syn: np.ndarray
    reading: np.ndarray
    rewrite_lex: np.ndarray | None = None  # surface BM25 (synonyms included at their weight) of the rewrite
    prf: np.ndarray | None = None  # BM25 of terms taken from the best dense neighbours (an experiment, see GRID)


@dataclass
class DevSet:
    name: str
    settings: Settings
    snap: Any
    qrels: dict[str, dict[str, int]]
    types: dict[str, str]
    queries: list[QueryEvidence]
    sid: dict[int, str]  # document id -> source id
    folds: dict[str, str]
    folded_texts: list[str]  # per row, for the phrase re-rank
    cache: dict = field(default_factory=dict)


def _all_cosines(snap, qv: np.ndarray, chunk_vecs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    chunk = chunk_vecs @ qv
    sent = chunk.copy()
    ptr, vecs = snap.sent_ptr, snap.sent_vecs
    if ptr is not None and vecs is not None and len(vecs):
        sims = vecs @ qv
        owners = np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))
        best = np.full(len(chunk), -np.inf, dtype=np.float32)
        np.maximum.at(best, owners, sims)
        sent = np.maximum(sent, best)
    return chunk.astype(np.float32), sent.astype(np.float32)


def _prf_terms(dense: np.ndarray, row_tokens: list[list[str]], df: dict[str, int], n_rows: int,
               query_tokens: set[str], depth: int = 3, terms: int = 8) -> list[str]:
    """Query expansion from the dense neighbours: the most distinctive bigrams of the ``depth``
    rows the dense side ranks first (tf x idf), that the query does not already contain."""
    from collections import Counter

    tf: Counter = Counter()
    for r in np.argsort(-dense)[:depth]:
        tf.update(t for t in row_tokens[int(r)] if len(t) == 2)
    weight = {t: c * np.log((n_rows + 1) / (df.get(t, 0) + 0.5)) for t, c in tf.items() if t not in query_tokens}
    return [t for t, _ in sorted(weight.items(), key=lambda x: -x[1])[:terms]]


def _evidence(ds, s: Settings, snap, limit: int, row_tokens: list[list[str]] | None = None) -> list[QueryEvidence]:
    from hikitsugi.embedding.encoder import get_embedder
    from hikitsugi.index import readings as rd
    from hikitsugi.index.lexical import tokenize
    from hikitsugi.ingest.normalize import normalize
    from hikitsugi.search.synonyms import synonym_tokens

    qids = [q for q in ds.queries if ds.qrels.get(q)]
    if limit and len(qids) > limit:
        step = len(qids) / limit
        qids = [qids[int(i * step)] for i in range(limit)]
    chunk_vecs = np.asarray(snap.dense.vectors, dtype=np.float32)  # the fp32 rows of the generation
    embed = get_embedder(s)
    syn_on = s.model_copy(update={"synonym_weight": 1.0})
    df: dict[str, int] = {}
    for toks in row_tokens or []:
        for t in set(toks):
            df[t] = df.get(t, 0) + 1
    out = []
    for qid in tqdm(qids, desc=f"evidence {ds.root.name}", unit="q", file=sys.stderr, disable=None):
        qn = normalize(ds.queries[qid])
        typed = snap.readings is not None and rd.is_reading_query(qn)
        qv = embed.embed_query(qn)
        dc, dsent = _all_cosines(snap, qv, chunk_vecs)
        rc = rs = rl = None
        if typed:
            rewrite = snap.readings.rewrite(qn, s.reading_converter)
            if rewrite and rewrite != qn:
                rc, rs = _all_cosines(snap, embed.embed_query(rewrite), chunk_vecs)
                rl = snap.lexical.score_all(tokenize(rewrite), None, synonym_tokens(rewrite, s), s.synonym_weight)
        lex = snap.lexical.scores(tokenize(qn))
        syn_t = synonym_tokens(qn, syn_on)
        syn = snap.lexical.scores(syn_t) if syn_t else np.zeros_like(lex)
        reading = np.zeros_like(lex)
        if snap.readings is not None:
            rt = rd.tokens(rd.query_reading(qn, snap.readings.analyzer))
            if rt:
                reading = snap.readings.index.scores(rt)
        prf = None
        if row_tokens:
            terms = _prf_terms(rs if rs is not None else dsent, row_tokens, df, len(row_tokens), set(tokenize(qn)))
            prf = snap.lexical.scores(terms).astype(np.float32) if terms else np.zeros_like(lex)
        out.append(QueryEvidence(qid, qn, typed, dc, dsent, rc, rs, lex.astype(np.float32), syn.astype(np.float32),
                                 reading.astype(np.float32), None if rl is None else rl.astype(np.float32), prf))
    return out


def _top(vec: np.ndarray, n: int, positive: bool) -> dict[int, float]:
    n = min(n, len(vec))
    idx = np.argpartition(-vec, n - 1)[:n]
    if positive:
        idx = idx[vec[idx] > 0]
    return {int(i): float(vec[i]) for i in idx}


def candidates(q: QueryEvidence, cfg: dict, n: int):
    """The product's Candidates for one query under one configuration (hybrid: both sides score every candidate)."""
    from hikitsugi.search.retrieve import Candidates

    rewrite = q.typed and cfg["reading_rewrite"] and q.rewrite_chunk is not None
    if cfg["sentence_kinds"]:
        dense = q.rewrite_sent if rewrite else q.dense_sent
    else:
        dense = q.rewrite_chunk if rewrite else q.dense_chunk
    rw = cfg["reading_weight"] if q.typed else cfg["reading_weight_other"]
    if rewrite and cfg.get("reading_rewrite_lexical") and q.rewrite_lex is not None:
        lex = q.rewrite_lex + rw * q.reading
    else:
        lex = q.lex + cfg["synonym_weight"] * q.syn + rw * q.reading
    if cfg.get("prf_weight") and q.prf is not None:
        lex = lex + cfg["prf_weight"] * q.prf
    d_top, l_top = _top(dense, n, False), _top(lex, n, True)
    union = set(d_top) | set(l_top)
    return Candidates(d_top, l_top, {r: float(dense[r]) for r in union}, {r: float(lex[r]) for r in union}, q.typed)


def _cards(ds: DevSet, fused: dict[int, float], k: int = 10) -> list[list[str]]:
    """Result cards as the product builds them: best chunk per document, cases of one
    resolution group folded into the first card (hikitsugi.search.cards.collapse_similar)."""
    from hikitsugi.search.cards import rank_documents

    cards: list[list[str]] = []
    by_key: dict[str, list[str]] = {}
    for did, _ in rank_documents(fused, ds.snap, k * 4):
        sid = ds.sid.get(did)
        if sid is None:
            continue
        key = ds.folds.get(sid)
        if key and key in by_key:
            by_key[key].append(sid)
            continue
        if len(cards) < k:
            card = [sid]
            cards.append(card)
            if key:
                by_key[key] = card
    return cards


def rank(ds: DevSet, q: QueryEvidence, cfg: dict, mode: str) -> list[list[str]]:
    from hikitsugi.search import rerank as phrase
    from hikitsugi.search.fuse import fuse

    key = tuple(cfg.get(k) for k in INPUT_KEYS)
    cands = ds.cache.setdefault(key, {}).get(q.qid)
    if cands is None:
        cands = candidates(q, cfg, ds.settings.candidates)
        ds.cache[key][q.qid] = cands
    if mode == "dense":
        return _cards(ds, cands.dense)
    if mode == "lexical":
        return _cards(ds, cands.lexical)
    s = ds.settings.model_copy(update={k: cfg[k] for k in ("fusion", "dense_weight", "dense_weight_reading",
                                                            "fusion_adaptive")})
    fused = fuse(cands, s)
    if cfg["phrase_weight"] > 0:
        top = sorted(fused, key=fused.get, reverse=True)[: ds.settings.phrase_depth]
        fused = phrase.rerank(fused, q.text, {r: ds.folded_texts[r] for r in top}, cfg["phrase_weight"])
    return _cards(ds, fused)


def measure(ds: DevSet, cfg: dict, modes=("dense", "lexical", "hybrid")) -> dict[str, dict]:
    out = {}
    for mode in modes:
        runs = [QueryRun(q.qid, rank(ds, q, cfg, mode)) for q in ds.queries]
        m = evaluate_runs(runs, ds.qrels, ds.types, ds.folds, latency=False)
        out[mode] = {**sweep_row(m), "by_type": {t: v["mrr@10"] for t, v in m["by_type"].items()}}
    return out


def score(per_set: dict[str, dict[str, dict]]) -> tuple[float, float]:
    """(objective, worst margin): mean hybrid MRR@10 minus the penalty for losing to a single retriever."""
    total, penalty, worst = 0.0, 0.0, 1.0
    for m in per_set.values():
        total += m["hybrid"]["mrr@10"]
        for key in ("mrr@10", "hit@5"):
            margin = m["hybrid"][key] - max(m["dense"][key], m["lexical"][key])
            worst = min(worst, margin)
            penalty += max(0.0, -NEVER_LOSE - margin)
    return total / len(per_set) - PENALTY * penalty, worst


# --------------------------------------------------------------------------- the procedure
def home_for(cache: Path | None, root: Path) -> Path | None:
    """The cached home of a data set's corpus: sets over the same corpus (a set and its
    hiragana form) share one, so it is indexed once."""
    if cache is None:
        return None
    ds = load_dataset(root)
    key = "\n".join(sorted(str(p) for p in ds.ingest)) + f"\n{ds.kind}"
    return cache / f"{ds.ingest[0].parent.name if ds.kind == 'manual' else ds.ingest[0].name}-" \
                   f"{hashlib.sha1(key.encode()).hexdigest()[:8]}"


def prepare(root: Path, settings: Settings, cache: Path | None, limit: int) -> DevSet:
    from sqlalchemy import select

    from hikitsugi.embedding.encoder import model_path
    from hikitsugi.index.snapshot import lexical_text
    from hikitsugi.index.update import ingest_paths, rebuild_index
    from hikitsugi.ingest.normalize import fold_for_lexical
    from hikitsugi.search.retrieve import get_snapshot
    from hikitsugi.storage.database import session_for
    from hikitsugi.storage.schema import Chunk, Document

    ds = load_dataset(root)
    home = home_for(cache, root)
    if home is None:
        import tempfile

        home = Path(tempfile.mkdtemp(prefix="hikitsugi-tune-"))
    home.mkdir(parents=True, exist_ok=True)
    s = settings.model_copy(update={"home": home, "database_url": "", "model": model_path(settings),
                                    "sentence_kinds": "manual"})
    ingest_paths(ds.ingest, s, kind=ds.kind)
    rebuild_index(s)  # this code's index generation (readings included), from stored vectors
    snap = get_snapshot(s.index_dir)
    session = session_for(s.db_url)
    try:
        sid = dict(session.execute(select(Document.id, Document.source_id)).all())
        rows = {r.id: r for r in session.execute(select(Chunk.id, Chunk.context, Chunk.text, Document.title)
                                                 .join(Document, Document.id == Chunk.document_id))}
    finally:
        session.close()
    texts = [fold_for_lexical(lexical_text(rows[int(c)].title, rows[int(c)].context, rows[int(c)].text))
             for c in snap.chunk_ids]
    from hikitsugi.index.lexical import tokenize

    evidence = _cached_evidence(home, ds, s, snap, limit, lambda: [tokenize(t) for t in texts])
    return DevSet(root.name, s, snap, ds.qrels, ds.types, evidence, sid, fold_keys(s), texts)


EVIDENCE_VERSION = 3  # bump when what _evidence computes changes
_FIELDS = ("dense_chunk", "dense_sent", "rewrite_chunk", "rewrite_sent", "lex", "syn", "reading", "rewrite_lex", "prf")


def _cached_evidence(home: Path, ds, s: Settings, snap, limit: int, row_tokens) -> list[QueryEvidence]:
    """:func:`_evidence`, kept in the cached home: a re-run with the same model, index, synonyms
    and queries (e.g. after a change of the search grid) embeds nothing."""
    from hikitsugi.search.synonyms import synonyms_path

    key = json.dumps([EVIDENCE_VERSION, str(ds.root), limit, snap.manifest.get("model"), snap.manifest.get("chunks"),
                      snap.manifest.get("sentences"), s.reading_analyzer,
                      hashlib.sha1(synonyms_path(s).read_bytes()).hexdigest(),
                      hashlib.sha1((ds.root / "queries.jsonl").read_bytes()).hexdigest()])
    path = home / f"tune-evidence-{ds.root.name}-{hashlib.sha1(key.encode()).hexdigest()[:12]}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            out = []
            for i, (qid, text, typed) in enumerate(meta):
                arrays = {f: (z[f"{f}_{i}"].astype(np.float32) if f"{f}_{i}" in z else None) for f in _FIELDS}
                out.append(QueryEvidence(qid, text, typed, **arrays))
            return out
    out = _evidence(ds, s, snap, limit, row_tokens())
    arrays = {f"{f}_{i}": getattr(q, f).astype(np.float32) for i, q in enumerate(out) for f in _FIELDS
              if getattr(q, f) is not None}
    np.savez_compressed(path, meta=json.dumps([[q.qid, q.text, q.typed] for q in out], ensure_ascii=False), **arrays)
    return out


def current_config(settings: Settings) -> dict:
    return {k: getattr(settings, k) for k in GRID}


def coordinate_search(sets: list[DevSet], start: dict, rounds: int = 2, log=print) -> tuple[dict, list[dict]]:
    def evaluate(cfg):
        per_set = {d.name: measure(d, cfg) for d in sets}
        return score(per_set), per_set

    best = dict(start)
    (best_score, best_worst), _ = evaluate(best)
    trace = [{"step": "start", "config": dict(best), "score": round(best_score, 5), "worst_margin": round(best_worst, 4)}]
    log(f"start: score {best_score:.4f} worst margin {best_worst:+.4f}")
    for r in range(rounds):
        changed = False
        for key, values in GRID.items():
            results = []
            for v in values:
                cfg = {**best, key: v}
                (sc, worst), _ = evaluate(cfg)
                results.append((v, round(sc, 5), round(worst, 4)))
            top = max(results, key=lambda x: x[1])
            trace.append({"round": r + 1, "setting": key, "tried": results})
            if top[0] != best[key] and top[1] > best_score + MIN_GAIN:
                log(f"round {r + 1}: {key} {best[key]!r} -> {top[0]!r} (score {best_score:.4f} -> {top[1]:.4f})")
                best[key], best_score, changed = top[0], top[1], True
            else:
                log(f"round {r + 1}: {key} stays {best[key]!r} ({', '.join(f'{v}: {sc:.4f}' for v, sc, _ in results)})")
        if not changed:
            break
    return best, trace


def choose_threshold(settings: Settings, support_sets: list[Path], history: Path | None, cache: Path | None,
                     min_precision: float = 0.9, max_wrong: float = 0.05) -> dict[str, Any]:
    """The self-resolve threshold from the dev support sets and the earlier half of the dev history."""
    from hikitsugi.eval.deflection import run_deflection
    from hikitsugi.eval.guidance import calibrate

    out: dict[str, Any] = {"guidance": {}, "history": None}
    picks = []
    for root in support_sets:
        cal = calibrate(root, settings, keep_home=home_for(cache, root), min_precision=min_precision)
        out["guidance"][root.name] = {"recommended": cal["recommended_threshold"], "at_recommended": cal["at_recommended"]}
        picks.append(cal["recommended_threshold"])
    if history is not None and history.exists():
        d = run_deflection(history, settings, max_wrong=max_wrong)
        out["history"] = {"file": history.name, "earlier": d["split"]["earlier"], "chosen": d["chosen_on_earlier"]}
        picks.append(d["recommended_threshold"])
    out["threshold"] = max(picks) if picks else settings.self_resolve_threshold
    return out


def run_tune(sets_file: Path, repo: Path, settings: Settings, cache: Path | None = None, limit: int = 0,
             thresholds: bool = True, log=print) -> dict[str, Any]:
    t0 = time.perf_counter()
    sets = load_sets(sets_file, repo)
    dev = [prepare(root, settings, cache, limit) for root in sets["dev"]]
    start = current_config(settings)
    chosen, trace = coordinate_search(dev, start, log=log)
    before = {d.name: measure(d, start) for d in dev}
    after = {d.name: measure(d, chosen) for d in dev}
    result: dict[str, Any] = {
        "dev_sets": [os.path.relpath(p, repo) for p in sets["dev"]],
        "test_sets_not_read": [os.path.relpath(p, repo) for p in sets["test"]],
        "queries_per_set": {d.name: len(d.queries) for d in dev}, "previous": start, "chosen": dict(chosen),
        "score_previous": round(score(before)[0], 5), "score_chosen": round(score(after)[0], 5),
        "worst_margin_chosen": round(score(after)[1], 4), "metrics_previous": before, "metrics_chosen": after,
        "trace": trace,
    }
    if thresholds:
        tuned = settings.model_copy(update=chosen)
        support = [p for p in sets["dev"] if (p / "dataset.yaml").exists()]
        th = choose_threshold(tuned, [p for p in support if any(
            t == NO_ANSWER for t in load_dataset(p).types.values())] or support, sets["histories"].get("dev"), cache)
        result["thresholds"] = th
        result["chosen"]["self_resolve_threshold"] = th["threshold"]
        result["previous"]["self_resolve_threshold"] = settings.self_resolve_threshold
    result["seconds"] = round(time.perf_counter() - t0, 1)
    return result


def apply_tuned(result_file: Path, target: Path) -> dict[str, Any]:
    """Write the chosen settings of a ``tune`` output as the shipped defaults (hikitsugi/defaults/tuned.yaml)."""
    result = json.loads(result_file.read_text(encoding="utf-8"))
    chosen = {k: result["chosen"][k] for k in TUNED_KEYS if k in result["chosen"]}
    header = ("# Retrieval defaults chosen by `hikitsugi eval tune` on the dev sets of eval/sets.yaml\n"
              f"# (dev: {', '.join(Path(p).name for p in result['dev_sets'])}; score {result['score_chosen']}).\n"
              "# Written by `hikitsugi eval tune --apply FILE`; hikitsugi/config.py takes these as defaults.\n"
              "# Re-run the procedure (docs/retrieval.md) instead of editing by hand.\n")
    target.write_text(header + yaml.safe_dump(chosen, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return chosen
