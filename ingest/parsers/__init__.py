"""One module per family of formats; :mod:`ingest.parsers.registry` picks the parser by extension."""
