"""A tiny test hook: ``HIKITSUGI_TEST_PAUSE_AT=<stage>`` makes a run sleep the first time
it reaches ``<stage>``, printing ``[hikitsugi] paused at <stage>`` on stderr, so a test can
kill it with SIGKILL at a known point. Stages: ``parse`` (first changed file committed),
``embed`` (first batch of vectors committed), ``snapshot`` (new generation written to
its temporary directory, not yet renamed), ``switch`` (CURRENT replaced, retired rows
not yet purged). Unset (always, outside tests), it does nothing.
"""

from __future__ import annotations

import os
import sys
import time

_paused: set[str] = set()


def pause_at(stage: str) -> None:
    if os.environ.get("HIKITSUGI_TEST_PAUSE_AT") == stage and stage not in _paused:
        _paused.add(stage)
        print(f"[hikitsugi] paused at {stage} (pid {os.getpid()})", file=sys.stderr, flush=True)
        time.sleep(3600)
