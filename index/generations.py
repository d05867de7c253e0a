"""Index generations published through the database, for several API replicas.

A generation is built from the database (``snapshot.build_snapshot``) into a home's
``index/`` folder. So that every ``hikitsugi serve`` on every machine configured with the
same database serves the same one, a build from the live rows is also *published*: a row
in ``index_generations`` whose ``id`` is a counter (the highest id is the generation of
record) and which lists the exact chunk and document ids it holds. A replica whose own
``index/CURRENT`` names another generation rebuilds the published one locally from the
stored vectors (:mod:`hikitsugi.index.follow`) — same rows, same vectors, same name —
and switches to it; nothing is copied between machines and nothing is re-embedded.

Replicas report what they serve in ``index_replicas`` (a heartbeat every poll). A
re-index never purges a retired row that the generation of record, or a generation a
live replica still serves, refers to (:func:`in_use_doc_ids`); rows a replica needs are
therefore there until it has switched.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import zlib

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from hikitsugi.storage.schema import IndexGeneration, IndexReplica

KEEP_PUBLISHED = 8  # rows kept in index_generations (plus any a live replica still serves)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def pack_ids(ids: np.ndarray) -> bytes:
    return zlib.compress(np.ascontiguousarray(ids, dtype="<i8").tobytes(), 6)


def unpack_ids(blob: bytes) -> np.ndarray:
    return np.frombuffer(zlib.decompress(blob), dtype="<i8").astype(np.int64)


def publish(session: Session, name: str, model: str, chunk_ids: np.ndarray, doc_ids: np.ndarray) -> int:
    """Make ``name`` the generation of record (committed); returns its counter."""
    row = IndexGeneration(name=name, model=model, chunks=int(len(chunk_ids)), chunk_ids=pack_ids(chunk_ids),
                          doc_ids=pack_ids(doc_ids), built_by=f"{socket.gethostname()}:{os.getpid()}")
    session.add(row)
    session.commit()
    _prune(session)
    return row.id


def newest(session: Session) -> tuple[int, str, str] | None:
    """(counter, name, model) of the generation of record, or None before the first build."""
    row = session.execute(select(IndexGeneration.id, IndexGeneration.name, IndexGeneration.model)
                          .order_by(IndexGeneration.id.desc()).limit(1)).first()
    return (row.id, row.name, row.model) if row else None


def chunk_ids_of(session: Session, gen_id: int) -> np.ndarray:
    return unpack_ids(session.scalar(select(IndexGeneration.chunk_ids).where(IndexGeneration.id == gen_id)))


def heartbeat(session: Session, replica: str, generation: str | None, previous: str | None) -> None:
    """Record what this replica serves now (and, during a grace period after a switch, served before)."""
    row = session.get(IndexReplica, replica) or IndexReplica(replica=replica)
    row.generation, row.previous, row.seen_at = generation, previous, _now()
    session.add(row)
    session.commit()


def forget_replica(session: Session, replica: str) -> None:
    session.execute(delete(IndexReplica).where(IndexReplica.replica == replica))
    session.commit()


def live_replicas(session: Session, ttl_s: float) -> list[IndexReplica]:
    since = _now() - dt.timedelta(seconds=ttl_s)
    return list(session.scalars(select(IndexReplica).where(IndexReplica.seen_at >= since)))


def in_use_doc_ids(session: Session, ttl_s: float) -> set[int]:
    """Document ids that the generation of record or a generation a live replica serves
    (or served until a moment ago) refers to: never purge these."""
    names = {n for r in live_replicas(session, ttl_s) for n in (r.generation, r.previous) if n}
    top = newest(session)
    if top is not None:
        names.add(top[1])
    out: set[int] = set()
    if names:
        for blob in session.scalars(select(IndexGeneration.doc_ids).where(IndexGeneration.name.in_(sorted(names)))):
            out.update(unpack_ids(blob).tolist())
    return out


def _prune(session: Session) -> None:
    """Forget old published generations (not the newest few, not one a replica reports)."""
    ids = session.scalars(select(IndexGeneration.id).order_by(IndexGeneration.id.desc())).all()
    if len(ids) <= KEEP_PUBLISHED:
        return
    served = {n for r in session.scalars(select(IndexReplica)) for n in (r.generation, r.previous) if n}
    old = ids[KEEP_PUBLISHED:]
    session.execute(delete(IndexGeneration).where(IndexGeneration.id.in_(old),
                                                  IndexGeneration.name.not_in(sorted(served) or [""])))
    session.commit()
