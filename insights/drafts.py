"""Content gaps become draft articles: what agents asked and got no confident answer to,
and — where the same problem was later escalated and resolved — what fixed it.

For each gap cluster of :func:`hikitsugi.insights.reports.content_gaps` (no-hit queries
clustered by meaning), a draft in Markdown for the knowledge owner:

* **title** — the cluster's central query, as an agent typed it;
* **よくある聞かれ方** — every phrasing agents used, with how often and when (masked);
* **症状 / 原因 / 対処** — sentences taken verbatim from the cases opened *after* the first
  unanswered query whose symptom is close to the cluster (cosine ≥ ``draft_case_similarity``
  to the cluster's centre, from the vectors stored for every case), with a resolution;
  each sentence once, most-used first;
* **出典** — the logged queries and the cases, with links.

Nothing is invented: every sentence of a draft is a logged query or a sentence of a stored
case, and carries its source (``sources``, shown on the lead page and as footnotes in the
Markdown); the only other text is the fixed section headings. Personal data is masked as
for a viewer not assigned to the customer, because an accepted article is a manual that
every agent reads.

A lead accepts a draft (:func:`accept`): it is written to the knowledge folder
(``knowledge_dir``, by default ``$HIKITSUGI_HOME/knowledge``) and ingested as a manual at
once; listing that folder in the sources file (``kind: manual``) keeps it through the
nightly re-index.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hikitsugi.access import masking
from hikitsugi.access import policy as access
from hikitsugi.access.audit import append as audit_append
from hikitsugi.config import Settings
from hikitsugi.ingest.normalize import normalize
from hikitsugi.insights.reports import ReportScope, _embed_cached, content_gaps
from hikitsugi.insights.searchlog import SearchLog
from hikitsugi.storage.schema import Chunk, Document, Embedding

MAX_CASES = 5  # cases a draft is assembled from
SECTIONS = (("symptoms", "症状"), ("causes", "原因"), ("resolutions", "対処"))
_SENT = re.compile(r"[^。！？!?\n]+[。！？!?]?")


class NotFound(LookupError):
    pass


@dataclass
class Line:
    """One sentence of a draft and where it comes from (every sentence has at least one source)."""

    text: str
    sources: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Draft:
    id: str
    title: str
    title_source: dict[str, Any]
    queries: list[Line]
    symptoms: list[Line]
    causes: list[Line]
    resolutions: list[Line]
    cases: list[dict[str, Any]]
    searches: int
    first_seen: str | None
    last_seen: str | None
    markdown: str = ""

    def to_dict(self) -> dict[str, Any]:
        def lines(xs: list[Line]) -> list[dict[str, Any]]:
            return [{"text": x.text, "sources": x.sources} for x in xs]

        return {"id": self.id, "title": self.title, "title_source": self.title_source, "queries": lines(self.queries),
                "symptoms": lines(self.symptoms), "causes": lines(self.causes),
                "resolutions": lines(self.resolutions), "cases": self.cases, "searches": self.searches,
                "first_seen": self.first_seen, "last_seen": self.last_seen, "markdown": self.markdown}


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENT.findall(text or "") if len(s.strip()) >= 4]


def draft_id(label: str) -> str:
    return hashlib.sha256(normalize(label).encode()).hexdigest()[:12]


def _iso(d: Any) -> str | None:
    if d is None:
        return None
    if isinstance(d, dt.datetime):
        d = d.replace(tzinfo=dt.timezone.utc) if d.tzinfo is None else d
        return d.isoformat(timespec="seconds")
    return str(d)


def _cases(session: Session, settings: Settings) -> list[dict[str, Any]]:
    """Live cases with a resolution: symptom vector (first chunk), texts and metadata."""
    from hikitsugi.embedding.encoder import model_id

    mid = model_id(settings)
    rows = session.execute(
        select(Document.source_id, Document.title, Document.occurred_at, Document.meta, Chunk.text, Embedding.vector)
        .join(Chunk, Chunk.document_id == Document.id)
        .join(Embedding, (Embedding.embed_hash == Chunk.embed_hash) & (Embedding.model == mid))
        .where(Document.retired_at.is_(None), Document.kind == "case", Chunk.ordinal == 0)).all()
    out = []
    for sid, title, when, meta, text, vec in rows:
        meta = meta or {}
        if not meta.get("resolution") or not when:
            continue
        out.append({"id": sid, "title": title, "date": when, "symptom": text, "meta": meta,
                    "vector": np.frombuffer(vec, dtype=np.float32)})
    return out


def _first_seen(session: Session, queries: list[str]) -> dt.datetime | None:
    first = session.scalar(select(func.min(SearchLog.created_at)).where(SearchLog.normalized_query.in_(queries)))
    if first is not None and first.tzinfo is None:
        first = first.replace(tzinfo=dt.timezone.utc)
    return first


def _add(lines: list[Line], text: str, source: dict[str, Any]) -> None:
    key = normalize(text)
    for x in lines:
        if normalize(x.text) == key:
            if all(s.get("id") != source.get("id") for s in x.sources):
                x.sources.append(source)
            return
    lines.append(Line(text, [source]))


def build_drafts(session: Session, settings: Settings, days: int | None = None, limit: int = 20,
                 embed: Callable[[list[str]], np.ndarray] | None = None, *, scope: ReportScope) -> list[Draft]:
    """One draft per content gap cluster (biggest first), as the caller (``scope``) may see
    it: only the logged queries whose scope it may read (the gaps report's rule) and the
    cases it may see; the CLI passes ``reports.TRUSTED``."""
    days = days or settings.analytics_days
    gaps = content_gaps(session, settings, days, limit=limit, embed=embed, scope=scope)
    if not gaps["clusters"]:
        return []
    lex = access.catalog(session, settings.db_url, None).lexicon
    mask = lambda t: masking.mask(t, lex)[0]  # noqa: E731 - one rule for every sentence of every draft
    cases = _cases(session, settings)
    seen = {r["source_id"] for r in scope.documents(
        [{"kind": "case", "source_id": c["id"], "title": c["title"]} for c in cases], "drafts")}
    cases = [c for c in cases if c["id"] in seen]
    cmat = np.stack([c["vector"] for c in cases]) if cases else np.zeros((0, 1), dtype=np.float32)
    if len(cases):
        cmat = cmat / np.maximum(np.linalg.norm(cmat, axis=1, keepdims=True), 1e-12)
    drafts = []
    for cl in gaps["clusters"]:
        qs = cl["queries"]
        texts = [q["query"] for q in qs]
        qv = _embed_cached(texts, settings, embed)
        w = np.asarray([q["count"] for q in qs], dtype=np.float32)
        centre = (qv * w[:, None]).sum(axis=0)
        centre /= max(float(np.linalg.norm(centre)), 1e-12)
        first = _first_seen(session, texts)
        since = (first - dt.timedelta(days=1)).date().isoformat() if first else None
        picked: list[tuple[float, dict[str, Any]]] = []
        if len(cases):
            sims = cmat @ centre
            for i in np.argsort(-sims):
                c = cases[int(i)]
                if sims[i] < settings.draft_case_similarity or len(picked) >= MAX_CASES:
                    break
                if since is None or str(c["date"])[:10] >= since:
                    picked.append((float(sims[i]), c))
        central = qs[0] if qs[0]["query"] == cl["label"] else next((q for q in qs if q["query"] == cl["label"]), qs[0])
        qsrc = lambda q: {"type": "query", "id": mask(q["query"]), "count": q["count"],  # noqa: E731
                          "last_seen": q["last_seen"], "label": f"検索ログ（{q['count']}回、最終 {str(q['last_seen'])[:10]}）"}
        queries = [Line(mask(q["example"] or q["query"]), [qsrc(q)]) for q in qs]
        d = Draft(draft_id(cl["label"]), mask(central["example"] or central["query"]), qsrc(central), queries,
                  [], [], [], [], cl["count"], _iso(first), cl["last_seen"])
        counts: dict[str, int] = defaultdict(int)
        for _, c in picked:
            m = c["meta"]
            src = {"type": "case", "id": c["id"], "url": f"/documents/{c['id']}", "date": c["date"],
                   "label": f"事例 {c['id']}（{str(c['date'])[:10]}）"}
            for s in _sentences(c["symptom"])[:2]:
                _add(d.symptoms, mask(s), src)
            for s in _sentences(str(m.get("cause") or "")):
                _add(d.causes, mask(s), src)
            for s in _sentences(str(m.get("resolution") or "")):
                _add(d.resolutions, mask(s), src)
                counts[normalize(s)] += 1
            d.cases.append({"id": c["id"], "title": mask(c["title"]), "date": c["date"], "url": src["url"],
                            "escalated_to": m.get("escalated_to"), "resolved_by": m.get("resolved_by"),
                            "similarity": round(next(x for x, y in picked if y is c), 4)})
        for lines in (d.symptoms, d.causes, d.resolutions):
            lines.sort(key=lambda x: -len(x.sources))
        d.markdown = to_markdown(d)
        drafts.append(d)
    return drafts


def to_markdown(d: Draft) -> str:
    """The draft as a Markdown article: headings, the sentences, each with footnotes to its sources."""
    notes: dict[str, int] = {}
    foot: list[str] = []

    def ref(sources: list[dict[str, Any]]) -> str:
        marks = []
        for s in sources:
            key = f"{s['type']}:{s['id']}"
            if key not in notes:
                notes[key] = len(notes) + 1
                where = f" {s['url']}" if s.get("url") else ""
                foot.append(f"[^{notes[key]}]: {s['label']}{where}" + (f"「{s['id']}」" if s["type"] == "query" else ""))
            marks.append(f"[^{notes[key]}]")
        return "".join(marks)

    out = [f"# {d.title}{ref([d.title_source])}", "", "## よくある聞かれ方", ""]
    out += [f"- {q.text}{ref(q.sources)}" for q in d.queries]
    for attr, heading in SECTIONS:
        lines = getattr(d, attr)
        if lines:
            out += ["", f"## {heading}", ""]
            out += [f"- {x.text}{ref(x.sources)}" for x in lines]
    if d.cases:
        out += ["", "## 参考にした事例", ""]
        out += [f"- [{c['id']}]({c['url']}) {str(c['date'])[:10]} {c['title']}" for c in d.cases]
    return "\n".join(out + ["", "## 出典", ""] + foot) + "\n"


def get_draft(session: Session, settings: Settings, did: str, days: int | None = None,
              embed: Callable[[list[str]], np.ndarray] | None = None, *, scope: ReportScope) -> Draft:
    for d in build_drafts(session, settings, days, limit=500, embed=embed, scope=scope):
        if d.id == did:
            return d
    raise NotFound(f"no draft '{did}' (drafts follow the content gaps of the last {days or settings.analytics_days} days)")


def _listed(settings: Settings, folder: Path) -> bool | None:
    """Does the sources file list the knowledge folder (or a folder above it)? None: no sources file."""
    from hikitsugi.ingest.sources import SourcesError, load_sources

    path = settings.home / "sources.yaml"
    if not path.exists():
        return None
    try:
        spec = load_sources(path)
    except SourcesError:
        return False
    folder = folder.absolute()
    return any(folder == e.path or e.path in folder.parents for e in spec.entries)


def accept(session: Session, settings: Settings, did: str, actor: str, role: str | None = None,
           key_id: str | None = None, source: str | None = None, ingest: bool = True,
           days: int | None = None, embed: Callable[[list[str]], np.ndarray] | None = None, *,
           scope: ReportScope) -> dict[str, Any]:
    """Write a draft (as ``scope`` sees it) into the knowledge folder (audited) and, with
    ``ingest``, ingest it as a manual."""
    d = get_draft(session, settings, did, days, embed, scope=scope)
    folder = settings.knowledge_path
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"gap-{d.id}.md"
    path.write_text(d.markdown, encoding="utf-8")
    audit_append(session, [{"actor": actor, "role": role, "key_id": key_id, "action": "draft.accept",
                            "target": f"draft:{d.id}", "field": None, "source": source,
                            "detail": {"title": d.title, "path": str(path), "cases": [c["id"] for c in d.cases]}}])
    session.commit()
    out: dict[str, Any] = {"id": d.id, "title": d.title, "path": str(path), "ingested": False,
                           "sources_listed": _listed(settings, folder)}
    if ingest:
        report = ingest_accepted(path, settings)
        out["ingested"] = not report.files_failed
        out["problems"] = report.problems
    if out["sources_listed"] is False:
        out["warning"] = (f"the sources file does not list {folder}: the next re-index will drop this article. "
                          f"Add '- path: {folder}' with 'kind: manual' to {settings.home / 'sources.yaml'}")
    return out


def ingest_accepted(path: Path, settings: Settings):
    """Ingest an accepted article as a manual (waits for a running re-index; the index picks it up)."""
    from hikitsugi.index.update import ingest_paths

    return ingest_paths([path], settings, kind="manual")
