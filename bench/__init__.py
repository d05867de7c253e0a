"""Benchmarks that print numbers; results are recorded in docs/benchmarks.md."""
