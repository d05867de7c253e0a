"""Opening the database: one engine per URL, migrated to the latest schema on first use.

SQLite (a file under HIKITSUGI_HOME, WAL so readers never block the writer) or PostgreSQL by URL;
both go through the same SQLAlchemy code.
"""

from __future__ import annotations

from functools import lru_cache

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


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    """One engine per URL, migrated to the latest schema; SQLite gets WAL so readers
    never block the writer."""
    from hikitsugi.storage.migrate import upgrade

    engine = create_engine(url, future=True, pool_pre_ping=True)
    if url.startswith("sqlite"):
        event.listen(engine, "connect", _sqlite_pragmas)
    upgrade(engine)
    return engine


def session_for(url: str) -> Session:
    return sessionmaker(engine_for(url), expire_on_commit=False)()
