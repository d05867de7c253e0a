"""Ingest: turn handover files (manuals, escalation histories, notes, customer records)
into normalized, chunked documents. Nothing here knows about indexes or the API."""
