"""How many words a query shares with what it should find: the honesty check of a labeled set.

Sample queries written by someone who has just read the answer reuse its words, which
flatters lexical search (support-ja: most content words of the worded queries occur in
their cases). Real agents describe the customer's problem in the customer's words. This
measures, per labeled query, the share of its content words (nouns, verbs, adjectives,
adverbs as dictionary forms, by the reading analyzer's dictionary) that occur among the
content words of its best-matching relevant document, and averages over queries (also
per query type). Reported next to every retrieval result (``eval retrieval``).
"""

from __future__ import annotations

from collections.abc import Callable

_CONTENT = {"名詞", "動詞", "形容詞", "形状詞", "副詞"}
_SKIP_LEMMAS = {"する", "為る", "ある", "有る", "在る", "いる", "居る", "なる", "成る", "れる", "られる", "こと", "事", "もの", "物", "よう", "ない", "無い"}


def content_words_fn() -> Callable[[str], set[str]]:
    """Dictionary forms of the content words of a text (SudachiPy, normalized form)."""
    from sudachipy import dictionary, tokenizer

    tok = dictionary.Dictionary().tokenizer(tokenizer.Tokenizer.SplitMode.C)

    def words(text: str) -> set[str]:
        out = set()
        for m in tok.tokenize(text[:20000]):
            if m.part_of_speech()[0] in _CONTENT:
                w = m.normalized_form().lower()
                if w not in _SKIP_LEMMAS and not w.isdigit():
                    out.add(w)
        return out
    return words


def query_overlap(queries: dict[str, str], qrels: dict[str, dict[str, int]], doc_texts: dict[str, str],
                  types: dict[str, str] | None = None) -> dict:
    """{"mean": share, "queries": n, "by_type": {type: share}} over the labeled queries."""
    words = content_words_fn()
    doc_words: dict[str, set[str]] = {}
    per_query: dict[str, float] = {}
    for qid, rel in qrels.items():
        relevant = [d for d, g in rel.items() if g > 0 and d in doc_texts]
        qw = words(queries.get(qid, ""))
        if not relevant or not qw or qid not in queries:
            continue
        best = 0.0
        for d in relevant:
            if d not in doc_words:
                doc_words[d] = words(doc_texts[d])
            best = max(best, len(qw & doc_words[d]) / len(qw))
        per_query[qid] = best
    types = types or {}
    by_type: dict[str, list[float]] = {}
    for qid, v in per_query.items():
        if types.get(qid):
            by_type.setdefault(types[qid], []).append(v)
    n = len(per_query)
    return {"mean": round(sum(per_query.values()) / n, 4) if n else None, "queries": n,
            "by_type": {t: round(sum(v) / len(v), 4) for t, v in sorted(by_type.items())}}


def corpus_texts(settings) -> dict[str, str]:
    """source id -> title and full text of every live document of an evaluation home."""
    from sqlalchemy import select

    from hikitsugi.storage.database import session_for
    from hikitsugi.storage.schema import Chunk, Document

    session = session_for(settings.db_url)
    try:
        out: dict[str, list[str]] = {}
        for sid, title, text in session.execute(
                select(Document.source_id, Document.title, Chunk.text).join(Chunk, Chunk.document_id == Document.id)
                .where(Document.retired_at.is_(None)).order_by(Chunk.id)):
            out.setdefault(sid, [title or ""]).append(text)
        return {k: "\n".join(v) for k, v in out.items()}
    finally:
        session.close()
