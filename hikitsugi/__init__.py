"""Hikitsugi: semantic search over customer-support handover knowledge.

This package holds what every stage shares: configuration and the command line.
The stages themselves live in the top-level packages ``ingest``, ``index``, ``api``
and ``eval`` so that a reader finds each feature by its folder name.
"""

__version__ = "0.1.0"
