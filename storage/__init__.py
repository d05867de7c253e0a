"""Storage: the database (SQLAlchemy 2, SQLite by default, PostgreSQL by URL) and its
Alembic migrations. Tables of documents, chunks and stored embeddings live in
:mod:`schema`; each other concern declares its own tables on the same ``Base``
(access: keys, grants, audit; insights: search log, feedback)."""
