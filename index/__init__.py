"""Index: the database of documents and chunks, embeddings, the FAISS and lexical
indexes, and the search that reads them. The API and the evaluation both call
:func:`index.search.search` so that they measure exactly what users get."""
