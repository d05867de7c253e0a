"""Hikitsugi: semantic search over customer-support handover knowledge.

Everything installs under this one import name. Each concern keeps its own folder in
the source tree, mapped to a subpackage (pyproject.toml): ``hikitsugi.ingest``,
``.storage``, ``.embedding``, ``.index``, ``.search``, ``.guidance``, ``.access``,
``.insights``, ``.api``, ``.eval``, ``.bench``. This folder holds what every stage
shares: configuration (:mod:`hikitsugi.config`), the editable defaults
(``defaults/``) and the command line (:mod:`hikitsugi.cli`).
"""

import os as _os

# Threads on a shared 2-core box: OpenMP (torch, faiss) must not spin-wait at barriers.
# With another process busy on the other core, torch's default ACTIVE policy turned one
# query embedding from ~50 ms into 1.0–1.6 s (issue 14, measured). libgomp reads the
# variable once, when it is loaded, so it is set here, before any hikitsugi module can
# import torch or faiss; a value the user set explicitly is kept. Details and the
# measurement: :mod:`hikitsugi.embedding.threads`.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# OpenBLAS (numpy's and faiss's BLAS) keeps its own pool, whose threads also spin: the
# query plan's exact scan of 5,000 allowed rows (a gather and one matrix-vector product)
# took 43 ms with the default pool on the busy 2-core machine and 1.0 ms on one thread.
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
