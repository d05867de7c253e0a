"""Conflict notices: a result card that is part of an open conflict says so.

The older side's card (a manual passage, a case's fix, a customer's commitment) gets
「この手順と矛盾する新しい事例があります」 (or the commitment's / newer side's wording) with a
link to the other side, so an agent does not act on stale advice; the newer side's card
says which older advice it contradicts. The other side is shown as the viewer may see
it (:func:`hikitsugi.access.policy.level`): a side the viewer may not see is named by its
kind and date only, never by id or title. Conflicts come from the ``conflicts`` table
that detection fills after each index generation (:mod:`hikitsugi.insights.conflicts`).
"""

from __future__ import annotations

from typing import Any

from hikitsugi.access import masking
from hikitsugi.access import policy as access
from hikitsugi.storage.conflicts import Conflict, open_conflicts_of

MESSAGES = {
    ("a", "customer"): "この特別対応と矛盾する新しい対応メモがあります",
    ("a", "manual"): "この手順と矛盾する新しい事例があります",
    ("a", "case"): "この手順と矛盾する新しい事例があります",
    ("b", "case"): "この事例は古い手順と食い違っています（リーダーの判断待ち）",
    ("b", "note"): "このメモは古い記録と食い違っています（リーダーの判断待ち）",
}
KIND_JA = {"case": "事例", "manual": "マニュアル", "note": "対応メモ", "customer": "顧客カルテ"}


def _other(row: Conflict, side: str, viewer: access.Principal | None, cat: access.Catalog | None,
           reads: access.Reads) -> dict[str, Any]:
    kind, sid, key = getattr(row, f"{side}_kind"), getattr(row, f"{side}_source_id"), getattr(row, f"{side}_customer")
    date = getattr(row, f"{side}_date")
    lv = access.level(viewer, kind, key)
    if lv == access.HIDDEN:
        return {"hidden": True, "kind": kind, "date": date, "source_id": None, "title": f"担当外の{KIND_JA.get(kind, kind)}",
                "url": None}
    title = getattr(row, f"{side}_title") or sid
    if lv == access.BASIC and cat is not None:
        title = masking.mask(title, cat.lexicon)[0]
    elif viewer is not None and key is not None and kind == "note":
        reads.add(f"document:{sid}", "private", via="conflict_notice", customer=key)
    return {"hidden": False, "kind": kind, "date": date, "source_id": sid, "title": title, "url": f"/documents/{sid}"}


def _notice(row: Conflict, side: str, viewer, cat, reads: access.Reads) -> dict[str, Any]:
    mine_kind = getattr(row, f"{side}_kind")
    other_side = "b" if side == "a" else "a"
    return {"conflict_id": row.id, "kind": row.kind, "side": "older" if side == "a" else "newer",
            "message": MESSAGES.get((side, mine_kind), "矛盾する記録があります"),
            "other": _other(row, other_side, viewer, cat, reads)}


def add_conflict_notices(session, results: list, ctx, viewer: access.Principal | None,
                         cat: access.Catalog | None, reads: access.Reads) -> None:
    """Attach notices to the cards (``Result.conflicts``) and to the pinned commitments."""
    ids = [i for r in results for i in [r.source_id, *r.similar_ids]] + ([ctx.customer_id] if ctx is not None else [])
    rows = open_conflicts_of(session, ids)
    if not rows:
        return
    for r in results:
        shown = {r.source_id, *r.similar_ids}  # a card speaks for the cases folded into it
        for row in rows:
            for side in ("a", "b"):
                if getattr(row, f"{side}_source_id") not in shown:
                    continue
                if getattr(row, f"{side}_kind") == "manual" and getattr(row, f"{side}_part") != r.context:
                    continue  # another passage of the same manual
                if row.kind == "commitment_note" and side == "a" and ctx is not None \
                        and ctx.customer_id == row.a_source_id:
                    continue  # shown with the commitment in the pinned context
                r.conflicts.append(_notice(row, side, viewer, cat, reads))
    if ctx is not None:
        for c in ctx.commitments:
            for row in rows:
                if row.kind == "commitment_note" and row.a_source_id == ctx.customer_id and row.a_text == c.get("what"):
                    c.setdefault("conflicts", []).append(_notice(row, "a", viewer, cat, reads))
