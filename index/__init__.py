"""Index: the searchable generations built from the database — vectors (FAISS), the
lexical index (BM25), per-row filter codes — and the job that keeps them in line with
the sources (:mod:`update`: ingest, embed what changed, build a new generation, switch)."""
