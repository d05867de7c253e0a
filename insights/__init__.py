"""Insights: what the team learns from use — the search log, the outcomes agents
report (feedback), and the lead reports built on both (top queries, content gaps,
stale and never-retrieved documents, expiring commitments, live deflection)."""
