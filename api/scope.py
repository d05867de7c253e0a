"""The access layer of the API: one object decides what the caller of a route may see.

Every route that returns stored content — search, documents, every lead report, the
feedback echo, the audit log, and any export or page data added later — declares
``view: View = Depends(scoped("lead", "admin"))`` (roles optional) and gets that content
only through the :class:`View`:

* ``view.search(req, background)`` — search as the caller (private chunks excluded inside
  retrieval, personal data masked), the sensitive reads audited, the query logged masked
  and *scoped* to the customers whose private parts the answer showed;
* ``view.document(id)`` — one document as the caller may see it, ``None`` when it does not
  exist *or* the caller may not see it (the route answers 404 alike);
* ``view.report(fn, …)`` — a lead report (``hikitsugi.insights.reports``) run with the view
  as its :class:`~hikitsugi.insights.reports.ReportScope`: queries of scopes the caller
  may not read are withheld, notes of customers it is not in charge of left out, titles
  masked, commitment reasons and approvers cut; private reads audited;
* ``view.records(fn, …)`` — a store function that applies the policy per record itself
  (conflicts: each side at the caller's level), given the caller and the reads to audit;
* ``view.feedback(body)`` — an outcome for the caller's *own* search and what it showed;
* ``view.audit_events(…)`` — the audit log, admins only.

The rules themselves (who is in charge of what, what is basic and what is private, how
personal data is masked) live in :mod:`hikitsugi.access.policy`; the view binds them to a
request and writes every sensitive read it let through to the audit log before the
content is handed to the route — so a route cannot forget the audit.

Routes that return no stored content are listed in :data:`CONTENT_FREE` with the reason.
:func:`unscoped_routes` names every route that is neither; ``create_app`` logs them and
``tests/test_access_property.py`` fails on them, and also calls every route of the
OpenAPI schema as generated principals and fails on any response carrying what its
caller may not see — so a route added later without this layer fails the tests.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any, Callable
from zoneinfo import ZoneInfo

from fastapi import BackgroundTasks, Depends, HTTPException
from fastapi import routing as fastapi_routing
from fastapi.routing import APIRoute
from sqlalchemy import select
from starlette.routing import Mount, Route

from hikitsugi.access import audit as audit_store
from hikitsugi.access import policy as access
from hikitsugi.access.masking import mask_text
from hikitsugi.api.deps import Principal, current_principal
from hikitsugi.config import ConfigError, Settings, get_settings
from hikitsugi.index.filters import Filters
from hikitsugi.insights.feedback import record_feedback
from hikitsugi.insights.searchlog import SearchLog, new_search_id, record_search
from hikitsugi.search.retrieve import NoIndexError, get_snapshot
from hikitsugi.search.service import get_document, search
from hikitsugi.storage.database import session_for

log = logging.getLogger("hikitsugi.api")

# "METHOD /path" of every route that returns no stored content, and why.
CONTENT_FREE: dict[str, str] = {
    "GET /healthz": "the index generation's name and its number of chunks",
    "POST /auth/token": "a token for the user the admin names; nothing stored is read",
    "GET /analytics/deflection": "weekly counts of searches and outcomes, no text",
    "GET /": "the static search page (its data comes from POST /search)",
    "GET /leads": "the static lead page (its data comes from GET /analytics/report)",
    "GET /leads/knowledge": "the static conflicts and drafts page (its data comes from /conflicts and /drafts)",
    "GET /widget.js": "the static search box script",
    "GET /static": "static files (pages, script)",
    "GET /openapi.json": "the API schema",
    "GET /docs": "the API reference page",
    "GET /docs/oauth2-redirect": "part of the API reference page",
    "GET /redoc": "the API reference page",
}
VIEW_MARK = "hikitsugi_view"


def scoped(*roles: str) -> Callable[..., "View"]:
    """The dependency of every route that returns stored content: the caller's :class:`View`
    (403 when ``roles`` are given and the caller has none of them)."""

    def dependency(principal: Principal = Depends(current_principal)) -> View:
        if roles and principal.role not in roles:
            raise HTTPException(403, f"this needs the role {' or '.join(roles)}; your key has '{principal.role}'")
        return View(principal, get_settings())

    setattr(dependency, VIEW_MARK, True)
    return dependency


def _uses_view(dependant) -> bool:
    for dep in getattr(dependant, "dependencies", ()):
        if getattr(dep.call, VIEW_MARK, False) or _uses_view(dep):
            return True
    return False


def _flat_routes(app) -> list[tuple[str | None, set[str] | None, Any, list[Any]]]:
    """(path, methods, route, dependants) of every route, routers included (FastAPI ≥ 0.160
    keeps an included router as one lazy entry of ``app.routes``)."""
    contexts = getattr(fastapi_routing, "iter_route_contexts", None)
    out = []
    if contexts is None:  # older FastAPI: routers are flattened into app.routes
        for r in app.routes:
            out.append((getattr(r, "path", None), getattr(r, "methods", None), r, [getattr(r, "dependant", None)]))
        return out
    for ctx in contexts(app.routes):
        route = ctx.original_route
        try:
            effective = ctx.dependant
        except AttributeError:
            effective = None
        out.append((ctx.path, ctx.methods, route, [getattr(route, "dependant", None), effective]))
    return out


def route_keys(app) -> list[tuple[str, Any, bool]]:
    """("METHOD /path", route, takes the view) for every route the app serves, in or out of the schema."""
    out = []
    for path, methods, route, dependants in _flat_routes(app):
        uses = any(_uses_view(d) for d in dependants if d is not None)
        if isinstance(route, Mount):
            out.append((f"GET {path}", route, uses))
        elif isinstance(route, (APIRoute, Route)):
            out += [(f"{m} {path}", route, uses) for m in sorted(methods or ()) if m != "HEAD"]
    return out


def unscoped_routes(app) -> list[str]:
    """Routes that neither take the view nor are declared content-free: each is a bug."""
    return [key for key, _, uses in route_keys(app) if key not in CONTENT_FREE and not uses]


class View:
    """What one caller may see, for one request (see the module doc)."""

    def __init__(self, principal: Principal, settings: Settings) -> None:
        self.principal, self.settings = principal, settings
        self.reads = access.Reads()
        self._catalog: access.Catalog | None = None

    # ------------------------------------------------------------------ plumbing

    def catalog(self, session=None) -> access.Catalog:
        if self._catalog is None:
            own = session is None
            session = session or session_for(self.settings.db_url)
            try:
                try:
                    snap = get_snapshot(self.settings.index_dir)
                except NoIndexError:
                    snap = None
                self._catalog = access.catalog(session, self.settings.db_url, snap)
            finally:
                if own:
                    session.close()
        return self._catalog

    def audit(self, via: str) -> None:
        """Write the sensitive reads let through so far (one row each) and forget them."""
        if not self.reads.items:
            return
        p = self.principal
        session = session_for(self.settings.db_url)
        try:
            audit_store.append(session, [
                {"actor": p.user, "role": p.role, "key_id": p.key_id, "action": "read", "target": target,
                 "field": what, "source": p.source, "detail": {**detail, "via": detail.get("via", via)}}
                for target, what, detail in self.reads.items])
            session.commit()
        finally:
            session.close()
        self.reads = access.Reads()

    # ------------------------------------------------------------------ search and documents

    def search(self, req, background: BackgroundTasks) -> dict[str, Any]:
        """``POST /search`` as the caller: results, pinned context and guidance as it may see
        them; reads audited; the query logged (masked, scoped) after the response."""
        filters = None
        if req.filters is not None:
            f = req.filters
            filters = Filters(list(f.kinds), list(f.customers), list(f.statuses), list(f.products),
                              list(f.categories), f.date_from and f.date_from.isoformat(),
                              f.date_to and f.date_to.isoformat())
        try:
            resp = search(req.query, self.settings, k=req.k, mode=req.mode, customer=req.customer, filters=filters,
                          viewer=self.principal)
        except NoIndexError as exc:
            raise HTTPException(503, str(exc)) from None
        except LookupError as exc:
            raise HTTPException(422, [{"field": "customer", "message": str(exc)}]) from None
        except ConfigError as exc:  # the server's own files, not the caller's input
            log.error("configuration error: %s", exc)
            raise HTTPException(500, "server configuration error (see the server log)") from None
        except ValueError as exc:
            raise HTTPException(422, [{"field": "query", "message": str(exc)}]) from None
        self.reads.items += resp.sensitive_reads.items
        scope = access.log_scope(resp.sensitive_reads.customers() | access.query_customers(self.catalog(),
                                                                                            resp.normalized_query))
        self.audit("search")
        out = resp.to_dict()
        out["search_id"] = search_id = new_search_id()
        _PENDING.add(search_id)
        background.add_task(_log_search, self.settings, search_id, self.principal, req.model_dump(mode="json"),
                            out, dt.datetime.now(dt.timezone.utc), scope=scope, lexicon=self.catalog().lexicon)
        return out

    def document(self, source_id: str) -> dict[str, Any] | None:
        """A document as the caller may see it; None when there is none *or* it may not see it."""
        if "\x00" in source_id:
            return None
        try:
            doc = get_document(source_id, self.settings, viewer=self.principal, reads=self.reads)
        except access.Forbidden:
            return None
        self.audit("document")
        return doc

    # ------------------------------------------------------------------ lead reports (ReportScope)

    def documents(self, items: list[dict[str, Any]], via: str) -> list[dict[str, Any]]:
        return access.redact_listing(items, self.principal, self.catalog(), self.reads, via)

    def commitments(self, items: list[dict[str, Any]], via: str) -> list[dict[str, Any]]:
        return access.redact_commitments(items, self.principal, self.catalog(), self.reads, via)

    def query_scopes(self, scopes: list[str | None]) -> list[str | None]:
        return access.readable_scopes(scopes, self.principal)

    def report(self, fn: Callable[..., dict[str, Any]], *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Run a lead report as the caller (``fn(session, *args, scope=self, **kwargs)``)."""
        session = session_for(self.settings.db_url)
        try:
            out = fn(session, *args, scope=self, **kwargs)
        finally:
            session.close()
        self.audit("analytics")
        return out

    def records(self, fn: Callable[..., Any], *args: Any, via: str, **kwargs: Any) -> Any:
        """Run ``fn(session, settings, principal, reads, *args, **kwargs)`` — a store function
        that shows each record at this caller's level (``access.policy.level``) and notes the
        sensitive reads in ``reads`` — then audit them."""
        session = session_for(self.settings.db_url)
        try:
            out = fn(session, self.settings, self.principal, self.reads, *args, **kwargs)
        finally:
            session.close()
        self.audit(via)
        return out

    # ------------------------------------------------------------------ feedback

    def own_search(self, search_id: str, wait_s: float = 2.0) -> SearchLog | None:
        """The caller's logged search ``search_id`` (None: unknown or someone else's).

        The log row is written just after the search response; an outcome clicked at once
        may arrive first, so an id this process has answered but not logged yet is looked
        up again for up to ``wait_s``."""
        deadline = time.monotonic() + wait_s
        while True:
            session = session_for(self.settings.db_url)
            try:
                row = session.scalar(select(SearchLog).where(SearchLog.search_id == search_id))
            finally:
                session.close()
            if row is not None or search_id not in _PENDING or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        return row if row is not None and row.user == self.principal.user else None

    def feedback(self, body) -> dict[str, Any]:
        """Record an outcome on the caller's own search; only result ids it showed."""
        def bad(field: str, message: str) -> HTTPException:
            return HTTPException(422, [{"field": field, "message": message}])

        logged = self.own_search(body.search_id)
        if logged is None:
            raise bad("search_id", f"unknown search_id '{body.search_id}': send the search_id POST /search "
                                   "returned to you")
        shown = list(logged.result_ids or [])
        if body.result_ids and not set(body.result_ids) <= set(shown):
            raise bad("result_ids", "result_ids names cards this search did not show")
        if body.source_id is not None and body.source_id not in shown:
            raise bad("source_id", "source_id is not among the results this search showed")
        comment = mask_text(body.comment, self.catalog().lexicon) if body.comment else None
        row = record_feedback(self.settings, self.principal, body.outcome, logged.query, shown,
                              search_id=logged.search_id, source_id=body.source_id,
                              customer=logged.customer or body.customer, comment=comment)
        return {"id": row.id, "outcome": row.outcome, "search_id": row.search_id, "source_id": row.source_id,
                "query": row.query, "result_ids": row.result_ids, "user": row.user,
                "recorded_at": row.created_at.isoformat(timespec="seconds")}

    # ------------------------------------------------------------------ audit log

    def audit_events(self, *, actor: str | None, action: str | None, target: str | None,
                     since: dt.datetime | None, until: dt.datetime | None, limit: int) -> list[dict[str, Any]]:
        try:
            access.require_admin(self.principal, "the audit log")
        except access.Forbidden as exc:
            raise HTTPException(403, str(exc)) from None
        tz = ZoneInfo(self.settings.timezone)
        session = session_for(self.settings.db_url)
        try:
            rows = audit_store.query(session, actor=actor, action=action, target=target,
                                     since=_utc(since, tz), until=_utc(until, tz), limit=limit)
            return [r.to_dict() for r in rows]
        finally:
            session.close()


_PENDING: set[str] = set()  # search ids answered by this process whose log row is not written yet


def _log_search(settings: Settings, search_id: str, *args: Any, **kwargs: Any) -> None:
    try:
        record_search(settings, search_id, *args, **kwargs)
    finally:
        _PENDING.discard(search_id)


def _utc(value: dt.datetime | None, tz: ZoneInfo) -> dt.datetime | None:
    """A filter time in UTC; a naive one is the desk's local time. Times beyond what a
    datetime can hold in UTC (0001-01-01 in Tokyo) are clamped to the ends of time."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    try:
        return value.astimezone(dt.timezone.utc)
    except OverflowError:
        edge = dt.datetime.min if value.year < 2 else dt.datetime.max
        return edge.replace(tzinfo=dt.timezone.utc)
