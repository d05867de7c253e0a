"""Alembic environment for Hikitsugi (SQLite and PostgreSQL).

Used programmatically by :mod:`hikitsugi.storage.migrate` (which passes an open connection in
``config.attributes["connection"]``) or by hand with
``alembic -c storage/migrations/alembic.ini upgrade head``, in which case the URL is the
product's own (``HIKITSUGI_DATABASE_URL`` or SQLite under ``HIKITSUGI_HOME``).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

import hikitsugi.insights.feedback  # noqa: F401
import hikitsugi.insights.searchlog  # noqa: E402,F401  (search_log, feedback on the same metadata)
import hikitsugi.storage.conflicts  # noqa: E402,F401  (conflicts)
from hikitsugi.storage.schema import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from hikitsugi.config import get_settings

    settings = get_settings()
    settings.ensure_dirs()
    return settings.db_url


def _configure(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite", compare_type=True)


def run_migrations_offline() -> None:
    url = _url()
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=url.startswith("sqlite"))
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
