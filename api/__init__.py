"""HTTP API (FastAPI) and the search page. It calls :mod:`hikitsugi.search.service` and nothing else."""
