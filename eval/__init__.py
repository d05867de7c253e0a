"""Evaluation: retrieval metrics on labeled query sets, through the product's own search."""
