"""Opening the database: one engine per URL, migrated to the latest schema on first use.

SQLite (a file under HIKITSUGI_HOME, WAL so readers never block the writer) or PostgreSQL by URL;
both go through the same SQLAlchemy code.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from sqlalchemy import (
    create_engine,
    event,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import (
    Session,
    sessionmaker,
)


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # pragma: no cover - trivial
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _private_sqlite_file(engine: Engine) -> None:
    """Create a new SQLite database file readable by its owner only (0600; SQLite gives its
    -wal and -shm files the same mode). It holds customer records and notes; the default
    umask would make it 0644, readable by every user of the machine. An existing file's
    mode is left as its owner set it."""
    db = engine.url.database
    if not db or db == ":memory:" or db.startswith("file:"):
        return
    path = Path(db)
    if path.exists():
        return
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:  # another process created it meanwhile
        pass


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    """One engine per URL, migrated to the latest schema; SQLite gets WAL so readers
    never block the writer."""
    from hikitsugi.storage.migrate import upgrade

    engine = create_engine(url, future=True, pool_pre_ping=True)
    if url.startswith("sqlite"):
        _private_sqlite_file(engine)
        event.listen(engine, "connect", _sqlite_pragmas)
    upgrade(engine)
    return engine


def session_for(url: str) -> Session:
    return sessionmaker(engine_for(url), expire_on_commit=False)()
