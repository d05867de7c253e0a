"""A serving process follows the generation published in the database.

Every ``generation_poll_s`` seconds a :class:`Follower` (started by ``hikitsugi serve``)
reads the generation counter (one indexed query). When the database names a generation
this home does not serve, it rebuilds that generation here from the stored vectors —
exactly the chunk ids the publisher recorded, under the same name — through the same
``snapshot.build_snapshot`` a re-index uses, lets the server preload it, and switches
``index/CURRENT`` to it. Queries keep being answered by the old generation until the
new one is complete and loaded; each query sees one or the other, never a mix. Then it
writes a heartbeat saying which generation it serves, which keeps those rows from being
purged by the next re-index.

When the server shares its home with the re-index job (one machine), the job has
already written the generation there and the follower only switches (or finds nothing
to do). How long a replica on another machine takes to switch is the poll interval
plus the local build (measured in docs/benchmarks.md).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import socket
import threading
import time
from typing import Callable, Iterator

from hikitsugi.config import Settings
from hikitsugi.embedding.encoder import model_id
from hikitsugi.index import generations
from hikitsugi.index.snapshot import GenerationGone, build_snapshot, current_name, switch_current
from hikitsugi.storage.database import session_for

log = logging.getLogger("hikitsugi.follow")


@contextlib.contextmanager
def _follow_lock(settings: Settings) -> Iterator[None]:
    """Two servers on one home never build the same generation twice at once."""
    settings.index_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.index_dir / "follow.lock", "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def sync(settings: Settings, before_switch: Callable[[str], None] | None = None) -> str | None:
    """Bring this home's ``CURRENT`` to the published generation; returns the name switched
    to, or None when there was nothing to do."""
    session = session_for(settings.db_url)
    try:
        top = generations.newest(session)
        if top is None or current_name(settings.index_dir) == top[1]:
            return None
        gen_id, name, model = top
        if model != model_id(settings):
            log.error("the published generation %s was built with model %s, this server is configured with %s: "
                      "not switching (set HIKITSUGI_MODEL alike everywhere)", name, model, model_id(settings))
            return None
        with _follow_lock(settings):
            if current_name(settings.index_dir) == name:
                return None
            if (settings.index_dir / name / "manifest.json").exists():  # built here already (the job's home)
                if before_switch is not None:
                    before_switch(name)
                switch_current(settings.index_dir, name)
            else:
                shutil.rmtree(settings.index_dir / f".{name}.tmp", ignore_errors=True)  # a build killed earlier
                t = time.perf_counter()
                build_snapshot(session, settings, chunk_ids=generations.chunk_ids_of(session, gen_id), name=name,
                               before_switch=before_switch)
                log.info("built the published generation %s here in %.1fs", name, time.perf_counter() - t)
        return name
    finally:
        session.close()


def replica_id(port: int | None = None) -> str:
    return f"{socket.gethostname()}:{port or 0}:{os.getpid()}"


class Follower(threading.Thread):
    """Polls the generation counter, switches, and writes the heartbeat (a daemon thread)."""

    def __init__(self, settings: Settings, replica: str, before_switch: Callable[[str], None] | None = None) -> None:
        super().__init__(name="hikitsugi-follower", daemon=True)
        self.settings, self.replica, self.before_switch = settings, replica, before_switch
        self._stop = threading.Event()
        self._previous: str | None = None
        self._switched_at = 0.0
        self.switches: list[tuple[str, float]] = []  # (generation, seconds the switch took)

    def step(self) -> str | None:
        """One poll: switch if the database names another generation, then heartbeat."""
        t = time.perf_counter()
        before = current_name(self.settings.index_dir)
        name = None
        try:
            name = sync(self.settings, self.before_switch)
        except GenerationGone as exc:  # purged under us: a newer generation is published; take it next poll
            log.warning("published generation went away while building it (%s); following the newer one", exc)
        if name:
            self._previous, self._switched_at = before, time.monotonic()
            self.switches.append((name, round(time.perf_counter() - t, 2)))
            log.info("now serving generation %s (switched in %.1fs)", name, time.perf_counter() - t)
        grace = max(self.settings.purge_grace_s, 2 * self.settings.generation_poll_s) + 5.0
        previous = self._previous if time.monotonic() - self._switched_at < grace else None
        session = session_for(self.settings.db_url)
        try:
            generations.heartbeat(session, self.replica, current_name(self.settings.index_dir), previous)
        finally:
            session.close()
        return name

    def run(self) -> None:
        while not self._stop.wait(self.settings.generation_poll_s):
            try:
                self.step()
            except Exception:  # a database hiccup must not kill the thread: try again next poll
                log.exception("following the published generation failed; retrying")

    def stop(self) -> None:
        self._stop.set()
        session = session_for(self.settings.db_url)
        try:
            generations.forget_replica(session, self.replica)
        except Exception:
            log.warning("could not remove this replica's heartbeat row")
        finally:
            session.close()
