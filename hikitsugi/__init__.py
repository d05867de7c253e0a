"""Hikitsugi: semantic search over customer-support handover knowledge.

Everything installs under this one import name. Each concern keeps its own folder in
the source tree, mapped to a subpackage (pyproject.toml): ``hikitsugi.ingest``,
``.storage``, ``.embedding``, ``.index``, ``.search``, ``.guidance``, ``.access``,
``.insights``, ``.api``, ``.eval``, ``.bench``. This folder holds what every stage
shares: configuration (:mod:`hikitsugi.config`), the editable defaults
(``defaults/``) and the command line (:mod:`hikitsugi.cli`).
"""

__version__ = "0.1.0"
