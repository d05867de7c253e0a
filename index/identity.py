"""Which stored document a parsed document is: identity includes the source.

A parser names each document: a record by its own id (受付番号, 記録ID, customer id), a
file by its path relative to the ingest root (``README.md``, ``manuals/a.md``, an
e-mail's attachment ``mail/x.eml/spec.pdf``, a row without an id ``export.csv#12``).
Those names are unique *within* one source — one sources-file entry, or one root given
to ``hikitsugi ingest`` — but not across sources: two folders both have a
``README.md``. Identity is therefore (source, name):

* the same file again keeps the id its documents already have;
* a *path-derived* name already used by a live document of another source is namespaced
  by this file's source — ``<root folder>/README.md``, or with a hash of the root when
  even that is taken — so both documents live side by side and keep their ids on every
  later run;
* a *record id* already used by a live document of the same source is that document (a
  record moved from one export file to the next of one folder);
* a record id used by a live document of *another* source cannot be renamed (it is the
  id users and links know): the record is not stored, and the problem names both files.

Before this, the second folder's ``README.md`` replaced the first folder's, silently,
and re-ingesting the first folder did not bring it back.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from sqlalchemy import select
from sqlalchemy.orm import Session

from hikitsugi.ingest.model import ParsedDoc
from hikitsugi.storage.schema import Document, Source


def path_derived(name: str, rel: str) -> bool:
    """Is this document name made from the file's path (not an id written in the data)?"""
    return name == rel or name.startswith((rel + "/", rel + "#"))


def source_label(root: str, file_key: str) -> str:
    """A short, stable name for a source: the root folder's name (for a single-file root,
    its folder's name)."""
    p = PurePosixPath(root or file_key)
    if root == file_key or not root:
        p = p.parent
    return p.name or "root"


@dataclass
class Identities:
    docs: dict[str, ParsedDoc] = field(default_factory=dict)  # final source id → parsed document
    replaces: dict[str, Document] = field(default_factory=dict)  # final source id → live row of another file it is
    problems: list[str] = field(default_factory=list)  # records left out: id taken by another source


def _live_elsewhere(session: Session, ids: list[str], file_key: str) -> dict[str, tuple[Document, str | None]]:
    """Live documents with these ids from *other* files, with their file's root."""
    out: dict[str, tuple[Document, str | None]] = {}
    for i in range(0, len(ids), 500):
        part = ids[i:i + 500]
        rows = session.execute(
            select(Document, Source.root).join(Source, Source.path == Document.source_key, isouter=True)
            .where(Document.source_id.in_(part), Document.retired_at.is_(None))).all()
        for doc, root in rows:
            if doc.source_key != file_key:
                out[doc.source_id] = (doc, root)
    return out


def assign(session: Session, parsed: list[ParsedDoc], file_key: str, rel: str, root: str,
           existing: dict[str, Document], path: str) -> Identities:
    """Final ids for one file's parsed documents (see the module doc). ``existing`` are the
    file's own live rows by id; ``path`` is how problems name this file."""
    out = Identities()
    label = source_label(root, file_key)
    tag = hashlib.sha256((root or file_key).encode()).hexdigest()[:8]
    candidates: dict[str, list[str]] = {}
    for doc in parsed:
        if doc.source_id in candidates:  # the parser's duplicate (same id twice in a file): first wins
            continue
        name = doc.source_id
        candidates[name] = [name, f"{label}/{name}", f"{label}-{tag}/{name}"] if path_derived(name, rel) else [name]
    taken = _live_elsewhere(session, sorted({c for cs in candidates.values() for c in cs} - set(existing)), file_key)
    by_name = {d.source_id: d for d in reversed(parsed)}
    for name, cands in candidates.items():
        doc = by_name[name]
        mine = next((c for c in cands if c in existing), None)
        if mine is not None:
            final = mine
        elif len(cands) > 1:  # path-derived: the first name no other source holds
            final = next((c for c in cands if c not in taken and c not in out.docs), None)
            if final is None:
                out.problems.append(f"{name}: every id for it is taken ({', '.join(cands)}) — skipped")
                continue
        elif name in taken:
            holder, holder_root = taken[name]
            if holder_root is not None and holder_root != root:
                out.problems.append(
                    f"{name}: this id is already the id of a document from {holder.source_key} (another source); "
                    f"ids must be unique across sources — skipped. Remove the duplicate record from one of the "
                    f"two files, or ingest both from one folder if they are exports of the same system")
                continue
            final = name
            out.replaces[final] = holder  # a record moved between files of one source: the same document
        else:
            final = name
        doc.source_id = final
        out.docs[final] = doc
    return out
