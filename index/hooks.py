"""Two kinds of hooks on an index run.

**After a generation** (:func:`after_generation`): the functions named by the
``after_generation`` setting (``module:function``, comma-separated) run once a new
generation is built and switched to, inside the run's lock, with the open session, the
settings and the generation's name. Conflict detection
(``hikitsugi.insights.conflicts:detect_after_generation``) is the default. They are named
in configuration rather than imported here because they belong to higher layers (they
read the whole knowledge base, the index does not depend on them); a hook that fails is
reported in the run's problems and never unpublishes the generation.

**A tiny test hook**: ``HIKITSUGI_TEST_PAUSE_AT=<stage>`` makes a run sleep the first time
it reaches ``<stage>``, printing ``[hikitsugi] paused at <stage>`` on stderr, so a test can
kill it with SIGKILL at a known point. Stages: ``parse`` (first changed file committed),
``embed`` (first batch of vectors committed), ``snapshot`` (new generation written to
its temporary directory, not yet renamed), ``switch`` (CURRENT replaced, retired rows
not yet purged). Unset (always, outside tests), it does nothing.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from typing import Any

_paused: set[str] = set()


def pause_at(stage: str) -> None:
    if os.environ.get("HIKITSUGI_TEST_PAUSE_AT") == stage and stage not in _paused:
        _paused.add(stage)
        print(f"[hikitsugi] paused at {stage} (pid {os.getpid()})", file=sys.stderr, flush=True)
        time.sleep(3600)


def after_generation(session: Any, settings: Any, generation: str) -> tuple[dict[str, str], list[str]]:
    """Run the configured after-generation hooks; returns ({hook: summary}, problems)."""
    summaries: dict[str, str] = {}
    problems: list[str] = []
    for spec in [x.strip() for x in (settings.after_generation or "").split(",") if x.strip()]:
        try:
            module, _, name = spec.partition(":")
            fn = getattr(importlib.import_module(module), name)
            summaries[spec] = str(fn(session, settings, generation) or "done")
        except Exception as exc:  # noqa: BLE001 - the generation is published; a hook must not undo that
            session.rollback()
            problems.append(f"after-generation hook {spec} failed ({exc.__class__.__name__}: {exc}); the new index "
                            "is served, the hook's results are from the previous run")
    return summaries, problems
