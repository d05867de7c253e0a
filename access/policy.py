"""Who sees what: the access policy, applied where results are assembled.

A viewer (:class:`Principal`) sees a document **fully** when it is an admin, when the
document belongs to a customer the viewer is assigned to (or holds a live handover
grant for), or when it is a manual that belongs to no customer (company knowledge).
Otherwise it sees the **basic** part only (docs/access.md):

* customer records — name, aliases, rank, owner, products, and each special commitment's
  *what* and validity. Arrangements, preferences, internal notes, the reason and approver
  of commitments, and emergency contacts are private.
* cases — searchable, with personal data in every text field masked (●●●). Cases are
  the desk's shared problem/resolution knowledge; the people in them are not.
* interaction notes and e-mails — not shown at all: they are where private
  arrangements and personal details live in free text, which no pattern can reliably
  separate from the rest.

Private parts are removed *inside retrieval* (a row mask, like the filters), so a
customer record whose private chunk matched best is returned with its best *allowed*
passage or not at all — never with the private one. Masking of personal data happens
on the assembled cards, before snippets and highlights are made, so a highlight can
never reveal what was masked.

Everything here also reports the sensitive reads it let through (emergency contacts,
private record parts, personal data shown unmasked) so the caller can audit them.
``viewer=None`` means a trusted in-process caller (evaluation, benchmarks, the CLI):
nothing is masked, and emergency contacts are not added.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from dataclasses import dataclass, field, replace
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import select

from hikitsugi.access import masking as pii
from hikitsugi.index.lexical import tokenize
from hikitsugi.ingest.normalize import normalize
from hikitsugi.storage.schema import Chunk, Document

BASIC_CONTEXT = "顧客カルテ"  # the one customer-record block every viewer may see
BASIC_META = ("customer", "customer_id", "aliases", "rank", "owner", "products")
STAFF_FIELDS = ("resolved_by", "escalated_to", "owner", "approved_by")  # staff names: shown as they are
CONTACT_FIELDS = ("name", "role", "phone", "email", "note")
FULL, BASIC, HIDDEN = "full", "basic", "hidden"


@dataclass(frozen=True)
class Principal:
    """The caller behind a request: a staff user with a role and the customers it fully sees."""

    user: str
    role: str  # agent | lead | admin
    key_id: str | None = None
    customers: frozenset[str] = field(default_factory=frozenset)  # customer keys this user may fully see
    source: str | None = None  # client address, for the audit log


LOCAL_ADMIN = Principal(user="local", role="admin")


def today(tz: str = "Asia/Tokyo") -> str:
    """Today's date where the desk works; access dates are whole days in that zone."""
    return dt.datetime.now(ZoneInfo(tz)).date().isoformat()


@dataclass
class Catalog:
    """What the policy needs to know about the corpus, built once per index generation."""

    name_to_key: dict[str, str]  # normalized id / name / alias → customer key (record id)
    domain_to_key: dict[str, str]  # contact e-mail domain → customer key
    customers: dict[str, dict[str, Any]]  # key → customer record meta
    lexicon: pii.Lexicon
    row_key: np.ndarray | None = None  # per snapshot row: -1 open to every viewer, else index into keys
    keys: list[str] = field(default_factory=list)
    doc_keys: dict[str, str | None] = field(default_factory=dict)  # note / customer record id → its customer key
    # lexical bigrams found only in private rows, and whose rows they are ("*": a note of no known customer)
    private_terms: dict[str, frozenset[str]] = field(default_factory=dict)

    def customer_key(self, name_or_id: str | None) -> str | None:
        """The key assignments use for a customer given by id, name or alias (normalized name if unknown)."""
        if not name_or_id or not str(name_or_id).strip():
            return None
        n = normalize(str(name_or_id))
        return self.name_to_key.get(n) or self.name_to_key.get(n.lower()) or n

    def doc_key(self, kind: str, source_id: str, customer: str | None, meta: dict[str, Any] | None) -> str | None:
        """The customer a document belongs to (None: no customer)."""
        if kind == "customer":
            return str((meta or {}).get("customer_id") or source_id)
        if customer:
            return self.customer_key(customer)
        author = str((meta or {}).get("author") or "")
        if "@" in author:
            domain = author.rsplit("@", 1)[1].strip(" >").lower()
            return self.domain_to_key.get(domain)
        return None


def level(viewer: Principal | None, kind: str, key: str | None) -> str:
    """FULL, BASIC or HIDDEN: how much of a document of this kind and customer the viewer sees."""
    if viewer is None or viewer.role == "admin":
        return FULL
    if key is None and kind == "manual":
        return FULL
    if key is not None and key in viewer.customers:
        return FULL
    return BASIC if kind in ("case", "customer", "manual") else HIDDEN


# ---------------------------------------------------------------- the catalog

_lock = threading.Lock()
_catalogs: dict[tuple[str, str], Catalog] = {}


def _strip_affiliation(name: str | None) -> str:
    return (str(name or "").split("（")[0].split("(")[0]).strip()


def catalog(session, db_url: str, snap=None) -> Catalog:
    """The catalog for this database and index generation (cached per generation)."""
    key = (db_url, snap.name if snap is not None else "")
    cat = _catalogs.get(key)
    if cat is None:
        with _lock:
            cat = _catalogs.get(key)
            if cat is None:
                cat = _build_catalog(session, snap)
                _catalogs.clear() if len(_catalogs) > 16 else None
                _catalogs[key] = cat
    return cat


def _record_texts(meta: dict[str, Any]) -> list[str]:
    """The free text of a customer record, where the customer's people are named (川口様, 杉浦先生)."""
    texts = [str(x) for key in ("arrangements", "preferences", "notes") for x in meta.get(key) or []]
    texts += [str(c.get(f) or "") for c in meta.get("commitments") or [] if isinstance(c, dict) for f in ("what", "reason")]
    texts += [str(c.get("note") or "") for c in meta.get("emergency_contacts") or [] if isinstance(c, dict)]
    return texts


def _build_catalog(session, snap) -> Catalog:
    name_to_key: dict[str, str] = {}
    domains: dict[str, str] = {}
    customers: dict[str, dict[str, Any]] = {}
    people: set[str] = set()
    keep: set[str] = set()
    texts: list[str] = []
    rows = session.execute(select(Document.source_id, Document.meta).where(
        Document.kind == "customer", Document.retired_at.is_(None))).all()
    for sid, meta in rows:
        meta = meta or {}
        ckey = str(meta.get("customer_id") or sid)
        customers[ckey] = meta
        for n in [ckey, meta.get("customer")] + list(meta.get("aliases") or []):
            if n:
                name_to_key[normalize(str(n))] = ckey
                name_to_key[normalize(str(n)).lower()] = ckey
                keep.add(str(n))
                keep.add(normalize(str(n)))
        for contact in meta.get("emergency_contacts") or []:
            if not isinstance(contact, dict):
                continue
            if person := pii.person_name(contact.get("name")):
                people.add(person)
            email = str(contact.get("email") or "")
            if "@" in email:
                domains[email.rsplit("@", 1)[1].lower()] = ckey
        for staff in [meta.get("owner")] + [c.get("approved_by") for c in meta.get("commitments") or []
                                            if isinstance(c, dict)]:
            if s := pii.person_name(_strip_affiliation(staff)):
                keep.add(s)
                keep.add(s.split()[0])
        texts += _record_texts(meta)
    cat = Catalog(name_to_key, domains, customers, pii.Lexicon())
    restricted = session.execute(
        select(Chunk.id, Chunk.context, Document.kind, Document.source_id, Document.customer, Document.meta)
        .join(Document, Chunk.document_id == Document.id)
        .where(Document.kind.notin_(("case", "manual")))).all()
    for _cid, _ctx, kind, sid, customer, meta in restricted:
        if kind == "note":
            meta = meta or {}
            if sender := pii.person_name(str(meta.get("author") or "").split("<")[0]):  # e-mail senders are people
                people.add(sender)
            if author := pii.person_name(_strip_affiliation(meta.get("resolved_by"))):  # 記入者: our staff
                keep.add(author)
                keep.add(author.split()[0])
        if sid not in cat.doc_keys:
            cat.doc_keys[sid] = cat.doc_key(kind, sid, customer, meta)
    # people a record names with an honorific (実務の窓口は事務長の川口様 → 川口): known, so masked
    # in queries and logs even when typed without one
    base = pii.Lexicon(keep=frozenset(keep))
    for text in texts:
        people |= pii.honorific_names(text, base)
    cat.lexicon = pii.Lexicon(people=frozenset(people - keep), keep=frozenset(keep))
    pii.remember_for_logs(cat.lexicon)
    if snap is not None:
        cat.row_key = _row_keys(cat, snap, restricted)
        cat.private_terms = _private_terms(cat.row_key, cat.keys, getattr(snap, "lexical", None))
    return cat


_HIRAGANA = re.compile("[\u3041-\u309f]")


def _private_terms(row_key: np.ndarray, keys: list[str], lexical) -> dict[str, frozenset[str]]:
    """Character bigrams of the lexical index that occur in private rows only, with the
    customers whose rows they are: the words that give away what a query is about.

    One vectorized pass over the BM25 postings (token → rows) per index generation: the
    smallest row key of a token's postings is ≥ 0 exactly when no open row holds it.

    Bigrams with a hiragana character are left out: they straddle particles and okurigana
    (「物の」「の水」 occurred in one customer's private notes only, so 「観葉植物の水やりの頻度」
    was scoped to two customers and hidden from every lead's content gaps); the words
    that give a query away (秘密, 取決, a product or place name) are kanji, katakana or latin."""
    if lexical is None or not getattr(lexical, "n_rows", 0) or row_key is None or not (row_key >= 0).any():
        return {}
    postings = lexical.retriever.scores
    indptr, indices = np.asarray(postings["indptr"]), postings["indices"]
    if not len(indices):
        return {}
    private: list[np.ndarray] = []
    step = 1 << 22  # postings per slice: bounded memory whatever the index size
    start_tok, n_tok = 0, len(indptr) - 1
    while start_tok < n_tok:
        end_tok = int(np.searchsorted(indptr, indptr[start_tok] + step, side="right")) - 1
        end_tok = min(max(end_tok, start_tok + 1), n_tok)
        lo, hi = int(indptr[start_tok]), int(indptr[end_tok])
        rk = row_key[np.asarray(indices[lo:hi])]
        nonempty = start_tok + np.nonzero(np.diff(indptr[start_tok:end_tok + 1]) > 0)[0]
        if len(nonempty):
            mins = np.minimum.reduceat(rk, indptr[nonempty] - lo)
            private.append(nonempty[mins >= 0])
        start_tok = end_tok
    wanted = set(np.concatenate(private).tolist()) if private else set()
    if not wanted:
        return {}
    names = {i: t for t, i in lexical.vocab.items() if i in wanted and len(t) >= 2 and not _HIRAGANA.search(t)}
    out: dict[str, frozenset[str]] = {}
    for tid, token in names.items():
        rows = np.asarray(indices[int(indptr[tid]):int(indptr[tid + 1])])
        out[token] = frozenset(keys[k] or "*" for k in set(row_key[rows].tolist()))
    return out


def query_customers(cat: Catalog, text: str) -> set[str]:
    """The customers a query is about by its words: those whose private rows alone hold one
    of its bigrams (「秘密の取り決め」 typed by the one agent who knows it)."""
    if not cat.private_terms or not text:
        return set()
    out: set[str] = set()
    for token in tokenize(text):
        if len(token) >= 2 and token in cat.private_terms:
            out |= cat.private_terms[token]
    return out


def _row_keys(cat: Catalog, snap, restricted) -> np.ndarray:
    """Per row of the snapshot: -1 when every viewer may retrieve it, else the index of the
    customer key whose viewers alone may (the empty key "": admins only)."""
    ids = np.asarray(snap.chunk_ids, dtype=np.int64)
    out = np.full(len(ids), -1, dtype=np.int32)
    if not len(ids) or not restricted:
        return out
    order = np.argsort(ids)
    sorted_ids = ids[order]
    index: dict[str, int] = {}
    for cid, context, kind, sid, customer, meta in restricted:
        if kind == "customer" and (context or "").split(" > ")[0] == BASIC_CONTEXT:
            continue
        ckey = cat.doc_key(kind, sid, customer, meta) or ""
        pos = int(np.searchsorted(sorted_ids, cid))
        if pos < len(sorted_ids) and sorted_ids[pos] == cid:
            out[order[pos]] = index.setdefault(ckey, len(index))
    cat.keys = list(index)
    return out


def row_mask(cat: Catalog, viewer: Principal | None) -> np.ndarray | None:
    """Rows the viewer may retrieve, or None when it may retrieve every row."""
    if viewer is None or viewer.role == "admin" or cat.row_key is None or not (cat.row_key >= 0).any():
        return None
    allowed = [i for i, k in enumerate(cat.keys) if k and k in viewer.customers]
    return (cat.row_key == -1) | np.isin(cat.row_key, np.asarray(allowed, dtype=np.int32))


def combine(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    if a is None:
        return b
    if b is None:
        return a
    return a & b


# ---------------------------------------------------------------- redaction

@dataclass
class Reads:
    """Sensitive reads let through for one response: (target, field, detail) triples."""

    items: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def add(self, target: str, what: str, **detail: Any) -> None:
        self.items.append((target, what, detail))

    def customers(self, fields: tuple[str, ...] = ("private", "emergency_contacts")) -> set[str]:
        """The customers whose private parts these reads showed (the scope of a logged query).
        Personal data in a case is masked in the log anyway and says nothing about whom a
        query is about, so it does not count by default."""
        out = set()
        for target, what, detail in self.items:
            if what not in fields:
                continue
            if target.startswith("customer:"):
                out.add(target.split(":", 1)[1])
            elif detail.get("customer"):
                out.add(str(detail["customer"]))
        return out


def _mask(text: str | None, lex: pii.Lexicon, kinds: set[str]) -> str | None:
    if not text:
        return text
    out, found = pii.mask(text, lex)
    kinds |= found
    return out


def _has_pii(texts: list[str | None], lex: pii.Lexicon) -> set[str]:
    return {k for t in texts if t for _, _, k in pii.find(t, lex)}


def redact_results(results: list, docs_by_sid: dict[str, Any], viewer: Principal | None, cat: Catalog,
                   reads: Reads) -> list:
    """Result cards as this viewer may see them (cards it may not see are dropped).
    Snippets are made by the caller from the masked passage, after this."""
    if viewer is None:
        return results
    out = []
    for r in results:
        doc = docs_by_sid.get(r.source_id)
        meta = (doc.meta if doc is not None else None) or {}
        key = cat.doc_key(r.kind, r.source_id, r.customer, meta)
        lv = level(viewer, r.kind, key)
        texts = [r.passage, r.title, r.resolution, r.cause, r.context]
        if lv == HIDDEN:
            continue
        if lv == FULL:
            if key is not None:
                found = _has_pii(texts, cat.lexicon)
                if found:
                    reads.add(f"document:{r.source_id}", "personal_data", kinds=sorted(found), customer=key)
                if r.kind == "note" or (r.kind == "customer" and (r.context or "").split(" > ")[0] != BASIC_CONTEXT):
                    # every read of a private part, whatever its text (not only when a pattern fires)
                    reads.add(f"customer:{key}", "private", document=r.source_id, context=r.context)
            out.append(r)
            continue
        if r.kind == "customer" and (r.context or "").split(" > ")[0] != BASIC_CONTEXT:
            continue  # cannot happen behind the row mask; never let it through regardless
        kinds: set[str] = set()
        lex = cat.lexicon
        passage = _mask(r.passage, lex, kinds) or ""
        out.append(replace(
            r, passage=passage, snippet="", title=_mask(r.title, lex, kinds) or "",
            resolution=_mask(r.resolution, lex, kinds), cause=_mask(r.cause, lex, kinds),
            context=_mask(r.context, lex, kinds) or "", redacted=bool(kinds) or r.kind == "customer",
        ))
    return out


def redact_context(ctx, viewer: Principal | None, cat: Catalog, reads: Reads):
    """The pinned customer context as this viewer may see it; adds emergency contacts for
    viewers who may see them (each such read is reported)."""
    if ctx is None or viewer is None:
        return ctx
    key = ctx.customer_id
    if level(viewer, "customer", key) == FULL:
        contacts = [{f: (str(c[f]) if c.get(f) is not None else None) for f in CONTACT_FIELDS}
                    for c in (cat.customers.get(key, {}).get("emergency_contacts") or []) if isinstance(c, dict)]
        if contacts:
            reads.add(f"customer:{key}", "emergency_contacts", count=len(contacts))
        parts = [name for name, present in (("arrangements", ctx.arrangements), ("preferences", ctx.preferences),
                                            ("commitment_reasons", any(c.get("reason") or c.get("approved_by")
                                                                       for c in ctx.commitments))) if present]
        if parts:
            reads.add(f"customer:{key}", "private", parts=parts)
        return replace(ctx, emergency_contacts=contacts)
    kinds: set[str] = set()
    commitments = [{"what": _mask(c.get("what"), cat.lexicon, kinds), "reason": None, "approved_by": None,
                    "valid_from": c.get("valid_from"), "valid_until": c.get("valid_until"),
                    "expired": c.get("expired", False)} for c in ctx.commitments]
    return replace(ctx, commitments=commitments, arrangements=[], preferences=[], emergency_contacts=[],
                   restricted=True)


def _mask_tree(value: Any, lex: pii.Lexicon, kinds: set[str], keep_keys=STAFF_FIELDS) -> Any:
    if isinstance(value, str):
        return _mask(value, lex, kinds)
    if isinstance(value, list):
        return [_mask_tree(v, lex, kinds, keep_keys) for v in value]
    if isinstance(value, dict):
        return {k: (v if k in keep_keys else _mask_tree(v, lex, kinds, keep_keys)) for k, v in value.items()}
    return value


class Forbidden(PermissionError):
    """The viewer may not see this document (or this listing) at all."""


def redact_document(doc: Document, viewer: Principal | None, cat: Catalog, reads: Reads) -> dict[str, Any]:
    """``GET /documents/{id}`` as this viewer may see it. Raises :class:`Forbidden`."""
    meta = dict(doc.meta or {})
    contacts = meta.pop("emergency_contacts", None)
    chunks = [{"context": c.context, "text": c.text} for c in doc.chunks]
    out = {"source_id": doc.source_id, "kind": doc.kind, "title": doc.title, "source_path": doc.source_path,
           "customer": doc.customer, "occurred_at": doc.occurred_at, "meta": meta, "chunks": chunks,
           "redacted": False}
    if viewer is None:
        return out
    key = cat.doc_key(doc.kind, doc.source_id, doc.customer, doc.meta)
    lv = level(viewer, doc.kind, key)
    if lv == HIDDEN:
        raise Forbidden(f"'{doc.source_id}' belongs to a customer you are not assigned to")
    if lv == FULL:
        if key is not None:
            if contacts:
                meta["emergency_contacts"] = contacts
                reads.add(f"customer:{key}", "emergency_contacts", count=len(contacts), document=doc.source_id)
            if doc.kind in ("customer", "note"):
                reads.add(f"customer:{key}", "private", document=doc.source_id)
            found = _has_pii([doc.title] + [c["text"] for c in chunks], cat.lexicon)
            if found:
                reads.add(f"document:{doc.source_id}", "personal_data", kinds=sorted(found), customer=key)
        return out
    kinds: set[str] = set()
    if doc.kind == "customer":
        basic = {k: meta[k] for k in BASIC_META if k in meta}
        basic["commitments"] = [{"what": c.get("what"), "valid_from": c.get("valid_from"),
                                 "valid_until": c.get("valid_until")} for c in meta.get("commitments") or []]
        meta = basic
        chunks = [c for c in chunks if (c["context"] or "").split(" > ")[0] == BASIC_CONTEXT]
    out["meta"] = _mask_tree(meta, cat.lexicon, kinds)
    out["chunks"] = [{"context": _mask(c["context"], cat.lexicon, kinds) or "",
                      "text": _mask(c["text"], cat.lexicon, kinds) or ""} for c in chunks]
    out["title"] = _mask(doc.title, cat.lexicon, kinds) or ""
    out["redacted"] = True
    return out


# ---------------------------------------------------------------- lead reports and the search log

def listed_key(cat: Catalog, kind: str, source_id: str, customer: str | None) -> str | None:
    """The customer of a document named in a listing (reports read no meta): notes and customer
    records from the catalog, cases by their customer column. A note the catalog does not
    know yet (ingested after this generation) belongs to the unknown customer "" (admins only)."""
    if kind in ("note", "customer"):
        return cat.doc_keys.get(source_id, "") if kind == "note" else (cat.doc_keys.get(source_id) or source_id)
    return cat.customer_key(customer) if customer else None


def redact_listing(items: list[dict[str, Any]], viewer: Principal | None, cat: Catalog, reads: Reads,
                   via: str) -> list[dict[str, Any]]:
    """Document rows of a lead report (``source_id``, ``kind``, ``title``, ``customer`` …) as
    this viewer may see them: notes of customers it is not in charge of are left out, other
    titles have personal data masked; the private titles it does see are audited (one entry
    per customer and response). Rows come back without their ``customer`` when it was only
    needed for the decision."""
    if viewer is None:
        return items
    out = []
    private: dict[str, list[str]] = {}
    for item in items:
        kind, sid = item["kind"], item["source_id"]
        key = listed_key(cat, kind, sid, item.get("customer"))
        lv = level(viewer, kind, key or None) if key != "" else (FULL if viewer.role == "admin" else HIDDEN)
        if lv == HIDDEN:
            continue
        row = dict(item)
        if lv == FULL:
            if key and kind == "note":
                private.setdefault(key, []).append(sid)
            elif key and _has_pii([row.get("title"), row.get("source_path")], cat.lexicon):
                reads.add(f"document:{sid}", "personal_data", customer=key, via=via)
        else:
            kinds: set[str] = set()
            row["title"] = _mask(row.get("title"), cat.lexicon, kinds) or ""
            row["source_path"] = _mask(row.get("source_path"), cat.lexicon, kinds) or ""
            row["redacted"] = bool(kinds)
        out.append(row)
    for key, ids in private.items():
        reads.add(f"customer:{key}", "private", documents=ids[:50], count=len(ids), via=via)
    return out


def redact_commitments(items: list[dict[str, Any]], viewer: Principal | None, cat: Catalog, reads: Reads,
                       via: str) -> list[dict[str, Any]]:
    """Commitments of a lead report (``customer_id``, ``what``, ``reason``, ``approved_by`` …):
    *why* a commitment was made and who approved it only for viewers in charge of the
    customer (audited), the rest see what was promised and until when (``restricted``)."""
    if viewer is None:
        return items
    out = []
    seen: dict[str, int] = {}
    for item in items:
        key = str(item["customer_id"])
        row = dict(item)
        if level(viewer, "customer", key) == FULL:
            if row.get("reason") or row.get("approved_by"):
                seen[key] = seen.get(key, 0) + 1
            row["restricted"] = False
        else:
            row.update(reason=None, approved_by=None, restricted=True,
                       what=_mask(row.get("what"), cat.lexicon, set()))
        out.append(row)
    for key, n in seen.items():
        reads.add(f"customer:{key}", "private", parts=["commitment_reasons"], count=n, via=via)
    return out


def log_scope(customers: set[str]) -> str:
    """The scope a logged query is stored with: the customers it is about — whose private
    parts its answer showed, or whose private rows alone hold one of its words — sorted and
    comma-joined ("" = none: any lead may read the query; "*": admins only)."""
    return ",".join(sorted((c or "*").replace(",", " ") for c in customers))


def readable_scopes(scopes: list[str | None], viewer: Principal | None) -> list[str | None]:
    """Which search-log scopes this viewer may read queries of: "" everyone; "C001,C002" only
    viewers in charge of every customer named; None (rows logged before scopes existed, whose
    text was masked by patterns alone) admins only."""
    if viewer is None or viewer.role == "admin":
        return list(scopes)
    out = []
    for scope in scopes:
        if scope is None:
            continue
        if scope == "" or all(k in viewer.customers for k in scope.split(",")):
            out.append(scope)
    return out


def require_admin(viewer: Principal | None, what: str) -> None:
    """The audit log is for admins only (the route says so too; this holds if it did not)."""
    if viewer is not None and viewer.role != "admin":
        raise Forbidden(f"{what} is for admins only")
