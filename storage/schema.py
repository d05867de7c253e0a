"""The database: sources, documents, chunks and stored embeddings (SQLAlchemy 2).

SQLite by default (a file under HIKITSUGI_HOME), PostgreSQL by URL. Embeddings are
stored keyed by (model, hash of the embedded text), so re-ingesting unchanged text —
or rebuilding the vector index — never re-embeds, and a chunk that moves between
documents keeps its vector.

Documents are versioned rather than updated in place: a changed document gets a new row
and the old row is *retired* (``retired_at`` set) but kept, with its chunks, until no
served index generation refers to it any more. So the generation that is live while a
re-index runs (or after one was killed) always finds exactly the rows it was built from.

The schema is owned by Alembic (``storage/migrations``); :func:`engine_for` upgrades a
database to the latest revision the first time a process opens it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    mapped_column,
    relationship,
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class Base(DeclarativeBase):
    pass


class Source(Base):
    """A file that was ingested, with the hash of its bytes to detect changes.

    ``path`` is the file's absolute path (unique even when two ingest roots hold the same
    relative name); ``rel`` is the path relative to the root it was found under, which is
    what documents show as their ``source_path``; ``root`` is that root (absolute), used
    by ``reindex`` to tell a deleted file from a root that is missing. Rows written before
    revision 0002 have ``path == rel`` and no root; they are adopted on the next ingest.
    """

    __tablename__ = "sources"
    path: Mapped[str] = mapped_column(String(1024), primary_key=True)
    rel: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    root: Mapped[str | None] = mapped_column(String(1024), nullable=True, index=True)
    parse_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)  # kind/mapping it was parsed with
    file_hash: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="ok")  # ok | failed
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    ingested_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


class Document(Base):
    __tablename__ = "documents"
    __table_args__ = (
        # one live row per source id; retired versions may share it until they are purged
        Index("uq_documents_source_id_live", "source_id", unique=True,
              sqlite_where=text("retired_at IS NULL"), postgresql_where=text("retired_at IS NULL")),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source_id: Mapped[str] = mapped_column(String(512), index=True)
    source_path: Mapped[str] = mapped_column(String(1024), index=True)
    source_key: Mapped[str | None] = mapped_column(String(1024), index=True, nullable=True)  # Source.path
    retired_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    title: Mapped[str] = mapped_column(Text)
    customer: Mapped[str | None] = mapped_column(String(256), index=True, nullable=True)
    occurred_at: Mapped[str | None] = mapped_column(String(32), nullable=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now, onupdate=_now)
    chunks: Mapped[list["Chunk"]] = relationship(
        back_populates="document", cascade="all, delete-orphan", order_by="Chunk.ordinal"
    )


class Chunk(Base):
    __tablename__ = "chunks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    ordinal: Mapped[int] = mapped_column(Integer)
    context: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text)
    embed_hash: Mapped[str] = mapped_column(String(64), index=True)
    ocr: Mapped[bool] = mapped_column(Boolean, default=False)
    document: Mapped[Document] = relationship(back_populates="chunks")


class Embedding(Base):
    __tablename__ = "embeddings"
    model: Mapped[str] = mapped_column(String(256), primary_key=True)
    embed_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    vector: Mapped[bytes] = mapped_column(LargeBinary)




# --- Several machines on one database (revision 0007): the published index generation,
# the replicas following it, and rate-limit buckets every API replica shares.


class IndexGeneration(Base):
    """One published index generation. ``id`` is the generation counter: the row with the
    highest id is the generation every replica should serve. ``chunk_ids``/``doc_ids`` are
    the exact rows it was built from (zlib-compressed little-endian int64), so a replica
    on another machine rebuilds the same generation from stored vectors, never from
    whatever happens to be live while a later re-index runs."""

    __tablename__ = "index_generations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    model: Mapped[str] = mapped_column(String(256))
    chunks: Mapped[int] = mapped_column(Integer)
    chunk_ids: Mapped[bytes] = mapped_column(LargeBinary)
    doc_ids: Mapped[bytes] = mapped_column(LargeBinary)
    built_by: Mapped[str | None] = mapped_column(String(256), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


class IndexReplica(Base):
    """A serving process's heartbeat: which generation it serves (and, for a grace period
    after a switch, which one it served before), so purging never deletes rows a replica
    may still read."""

    __tablename__ = "index_replicas"
    replica: Mapped[str] = mapped_column(String(256), primary_key=True)
    generation: Mapped[str | None] = mapped_column(String(128), nullable=True)
    previous: Mapped[str | None] = mapped_column(String(128), nullable=True)
    seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now, index=True)


class RateBucket(Base):
    """A token bucket of the API rate limit, shared by every replica (``tokens`` left at
    ``at``, seconds since the epoch on the database's clock)."""

    __tablename__ = "rate_limit_buckets"
    bucket: Mapped[str] = mapped_column(String(256), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    at: Mapped[float] = mapped_column(Float)
    allowed: Mapped[bool] = mapped_column(Boolean, default=True)
