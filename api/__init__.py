"""HTTP API (FastAPI) and the search page. It calls :mod:`index.search` and nothing else."""
