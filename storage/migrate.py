"""Schema migrations: Alembic, run programmatically when a process first opens a database.

:func:`upgrade` is called by :func:`hikitsugi.storage.database.engine_for`. It first reads the current
revision (one cheap query) and returns when the database is already at head, so the
normal case costs a millisecond. Otherwise it takes a lock — ``pg_advisory_lock`` on
PostgreSQL, an ``flock`` next to the database file on SQLite — so that a server and a
re-index starting at the same moment never migrate twice, and runs ``alembic upgrade
head``. A database created before Alembic was introduced (tables present, no
``alembic_version``) is stamped with the baseline revision 0001 first.

By hand: ``alembic -c storage/migrations/alembic.ini upgrade head`` (URL from
``HIKITSUGI_DATABASE_URL`` / ``HIKITSUGI_HOME`` like everything else).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
from functools import lru_cache
from pathlib import Path
from typing import Iterator

# Alembic logs its plugin set-up at INFO when imported; only our own lines matter here.
logging.getLogger("alembic").setLevel(logging.WARNING)

from alembic import command  # noqa: E402
from alembic.config import Config  # noqa: E402
from alembic.runtime.migration import MigrationContext  # noqa: E402
from alembic.script import ScriptDirectory  # noqa: E402
from sqlalchemy import inspect, text  # noqa: E402
from sqlalchemy.engine import Connection, Engine  # noqa: E402

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
BASELINE = "0001"
_PG_LOCK_KEY = 0x48494B49  # "HIKI"
log = logging.getLogger("hikitsugi.migrate")


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@lru_cache(maxsize=1)
def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def upgrade(engine: Engine) -> None:
    """Bring the database behind ``engine`` to the head revision (no-op when it is)."""
    head = head_revision()
    with engine.connect() as conn:
        if current_revision(conn) == head:
            return
    if engine.dialect.name == "sqlite":
        db = engine.url.database
        lock = _file_lock(Path(db + ".migrate.lock")) if db and db != ":memory:" else contextlib.nullcontext()
        with lock, engine.connect() as conn:
            _upgrade_locked(conn, head)
    else:
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
                conn.commit()
            try:
                _upgrade_locked(conn, head)
            finally:
                if engine.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
                    conn.commit()


def _upgrade_locked(conn: Connection, head: str) -> None:
    current = current_revision(conn)
    if current == head:  # another process did it while we waited for the lock
        return
    cfg = alembic_config()
    cfg.attributes["connection"] = conn
    log.info("migrating the database %s from revision %s to %s",
             conn.engine.url.render_as_string(hide_password=True), current or "(none)", head)
    if current is None and inspect(conn).has_table("documents"):
        command.stamp(cfg, BASELINE)  # created by create_all before migrations existed
        conn.commit()
    command.upgrade(cfg, "head")
    conn.commit()

