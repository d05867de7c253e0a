"""Phrase re-rank: reward passages that contain the query's wording verbatim.

BM25 over character 1+2-grams scores each gram on its own, so it cannot tell a passage
that holds 「トナーカートリッジの交換」 as one phrase from one that holds the same
characters scattered. Longer verbatim matches — an error message, a product code, a
manual's own sentence pasted into the query — are strong evidence. After fusion, the best
``phrase_depth`` chunks get a bonus for each distinct character 3-gram of the query they
contain (grams of hiragana alone, mostly particles and endings such as 「されてない」,
do not count), beyond the first two, which short queries share with many passages by
chance. Measured in docs/retrieval.md: on JSQuAD, whose questions reuse the paragraph's
wording, MRR@10 rises; on our support queries, which paraphrase, it stays level.
"""

from __future__ import annotations

from sqlalchemy import select

from hikitsugi.index.lexical import hiragana_only, segments
from hikitsugi.index.snapshot import Snapshot, lexical_text
from hikitsugi.ingest.normalize import fold_for_lexical
from hikitsugi.storage.schema import Chunk, Document

FREE_GRAMS = 2  # matches every passage may have by chance
GRAM_VALUE = 0.1  # bonus per further matched gram, times the phrase_weight setting


def query_grams(query_norm: str, n: int = 3) -> set[str]:
    """Distinct content character n-grams of a normalized query, folded like the lexical side."""
    grams: set[str] = set()
    for seg in segments(query_norm):
        grams.update(g for g in (seg[i:i + n] for i in range(len(seg) - n + 1)) if not hiragana_only(g))
    return grams


def phrase_bonus(grams: set[str], passage_folded: str) -> float:
    """Unweighted bonus of one passage (already folded with ``fold_for_lexical``)."""
    found = sum(1 for g in grams if g in passage_folded)
    return max(0, found - FREE_GRAMS) * GRAM_VALUE


def rerank(fused: dict[int, float], query_norm: str, texts: dict[int, str], weight: float) -> dict[int, float]:
    """``fused`` with the phrase bonus added for the rows in ``texts`` (row -> folded text)."""
    grams = query_grams(query_norm)
    if not grams or weight <= 0:
        return fused
    out = dict(fused)
    for row, text in texts.items():
        if row in out:
            out[row] += weight * phrase_bonus(grams, text)
    return out


def folded(title: str, context: str, text: str) -> str:
    """A chunk's text as the phrase bonus reads it: its lexical text, folded."""
    return fold_for_lexical(lexical_text(title, context, text))


def depth_rows(fused: dict[int, float], depth: int) -> list[int]:
    """The ``depth`` best fused rows: the ones the phrase bonus looks at."""
    return sorted(fused, key=fused.get, reverse=True)[:depth]


def phrase_texts(session, snap: Snapshot, fused: dict[int, float], depth: int) -> dict[int, str]:
    """{row: folded lexical text} of the ``depth`` best fused rows, for :func:`hikitsugi.search.rerank.rerank`."""
    rows = depth_rows(fused, depth)
    by_id = {int(snap.chunk_ids[r]): r for r in rows}
    found = session.execute(select(Chunk.id, Chunk.context, Chunk.text, Document.title)
                            .join(Document, Document.id == Chunk.document_id)
                            .where(Chunk.id.in_(list(by_id)))).all()
    return {by_id[c.id]: folded(c.title, c.context, c.text) for c in found}
