"""``hikitsugi eval analyzers``: choose the lexical analyzer by measurement.

Indexes a data set once with the product's own ingest, then builds one BM25 index per
analyzer over exactly the rows the product indexes (``snapshot.lexical_text``: title,
heading path and text after the shared normalization) and ranks documents for every
labeled query with each. Synonyms are left out so that only the analyzer differs.
SudachiPy is compared when it is installed (``pip install sudachipy sudachidict_core``);
it is not a dependency of the product.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import bm25s
import numpy as np
from sqlalchemy import select
from tqdm import tqdm

from hikitsugi.config import Settings
from hikitsugi.eval.home import throwaway_home
from hikitsugi.eval.retrieval import evaluate_rankings, load_dataset, sweep_row
from hikitsugi.index.lexical import hiragana_only, segments, tokenize
from hikitsugi.ingest.normalize import fold_for_lexical, normalize


def char_grams(sizes: tuple[int, ...], keep_hiragana_unigrams: bool = False) -> Callable[[str], list[str]]:
    def tok(text: str) -> list[str]:
        out: list[str] = []
        for seg in segments(text):
            for n in sizes:
                if n == 1:
                    out.extend(c for c in seg if keep_hiragana_unigrams or not hiragana_only(c))
                else:
                    out.extend(seg[i : i + n] for i in range(len(seg) - n + 1))
        return out
    return tok


def _sudachi() -> Callable[[str], list[str]] | None:
    try:
        from sudachipy import dictionary, tokenizer
    except ImportError:
        return None
    tk, mode = dictionary.Dictionary().create(), tokenizer.Tokenizer.SplitMode.C
    skip = {"助詞", "助動詞", "補助記号", "空白"}

    def tok(text: str) -> list[str]:
        return [m.normalized_form() for m in tk.tokenize(fold_for_lexical(text)[:20000], mode)
                if m.part_of_speech()[0] not in skip]
    return tok


def analyzers() -> dict[str, Callable[[str], list[str]]]:
    out = {
        "char 1+2 (shipped)": tokenize,
        "char 2": char_grams((2,)),
        "char 1+2+3": char_grams((1, 2, 3)),
        "char 1+2, hiragana unigrams": char_grams((1, 2), True),
    }
    sudachi = _sudachi()
    if sudachi is not None:
        out["sudachi C, normalized"] = sudachi
    return out


def analyzer_sweep(root: Path, settings: Settings, limit: int = 0) -> dict[str, dict[str, float]]:
    from hikitsugi.index.snapshot import lexical_text
    from hikitsugi.index.update import ingest_paths
    from hikitsugi.search.retrieve import get_snapshot
    from hikitsugi.storage.database import session_for
    from hikitsugi.storage.schema import Chunk, Document

    ds = load_dataset(root)
    with throwaway_home(settings, "hikitsugi-analyzers-") as s:
        ingest_paths(ds.ingest, s, kind=ds.kind)
        snap = get_snapshot(s.index_dir)
        session = session_for(s.db_url)
        rows = {r.id: r for r in session.execute(
            select(Chunk.id, Chunk.text, Chunk.context, Document.title, Document.source_id)
            .join(Document, Document.id == Chunk.document_id))}
        session.close()
        chunks = [rows[int(c)] for c in snap.chunk_ids]
        texts = [lexical_text(r.title, r.context, r.text) for r in chunks]
        qids = [q for q in ds.queries if ds.qrels.get(q)][: limit or None]
        results = {}
        for name, tok in analyzers().items():
            bm25 = bm25s.BM25(k1=s.bm25_k1, b=s.bm25_b, method="lucene")
            bm25.index([tok(t) or ["\u0000"] for t in texts], show_progress=False)
            vocab = bm25.vocab_dict
            runs: dict[str, list[str]] = {}
            for qid in tqdm(qids, desc=name, unit="q", file=sys.stderr, disable=None):
                terms = [t for t in tok(normalize(ds.queries[qid])) if t in vocab]
                scores = bm25.get_scores(terms) if terms else np.zeros(len(texts))
                ranked: list[str] = []
                for row in np.argsort(-scores)[:500]:
                    if scores[row] <= 0:
                        break
                    sid = chunks[row].source_id
                    if sid not in ranked:
                        ranked.append(sid)
                        if len(ranked) == 10:
                            break
                runs[qid] = ranked
            results[name] = sweep_row(evaluate_rankings(runs, ds.qrels))
        return results
