"""A throw-away ``HIKITSUGI_HOME`` for evaluations and benchmarks.

Every eval and benchmark indexes its data into a home of its own, so that it never
touches (or is skewed by) the user's index: SQLite in a temporary folder, the already
built model folder reused. One place for that, so each caller cannot forget the cleanup.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hikitsugi.config import Settings
from hikitsugi.embedding.encoder import model_path


@contextmanager
def throwaway_home(settings: Settings, prefix: str, keep: Path | None = None,
                   after_generation: bool = False) -> Iterator[Settings]:
    """Settings for a fresh home, removed afterwards; ``keep`` is used (and kept) instead when given.

    The after-generation hooks (conflict detection) are off unless ``after_generation``: an
    eval or a benchmark measures retrieval and ingest, and its figures stay comparable with
    those taken before the hooks existed."""
    home = keep or Path(tempfile.mkdtemp(prefix=prefix))
    update = {"home": home, "database_url": "", "model": model_path(settings)}
    if not after_generation:
        update["after_generation"] = ""
    try:
        yield settings.model_copy(update=update)
    finally:
        if keep is None:
            shutil.rmtree(home, ignore_errors=True)
