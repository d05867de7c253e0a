"""Knowledge that keeps itself honest: ``hikitsugi conflicts`` and ``hikitsugi drafts``.

``conflicts`` lists the contradictions detection recorded after the last index generation
(``conflicts detect`` runs it now), ``conflicts resolve`` records a lead's decision (audited
as ``cli:<OS user>``). ``drafts`` writes a Markdown draft article per content gap,
``drafts accept`` puts one into the knowledge folder and ingests it as a manual.
``eval conflicts`` measures detection on a labeled set. The CLI is a trusted local caller
(like ``hikitsugi search``): whoever runs it can read the database anyway.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from hikitsugi.cli.access import _actor, _session
from hikitsugi.cli.common import _err, _setup_logging, app, eval_app
from hikitsugi.config import get_settings

conflicts_app = typer.Typer(help="Contradictions in the knowledge base (found after every re-index).",
                            invoke_without_command=True)
drafts_app = typer.Typer(help="Draft articles from content gaps.", invoke_without_command=True)
app.add_typer(conflicts_app, name="conflicts")
app.add_typer(drafts_app, name="drafts")
KIND_JA = {"case_case": "事例どうし", "manual_newer": "マニュアル×新しい記録", "commitment_note": "特別対応×新しいメモ"}


def _side(s: dict) -> str:
    if s.get("hidden"):
        return f"(担当外の{s['kind']} {s.get('date') or ''})"
    part = f" [{s['part'].split(' > ')[-1]}]" if s.get("part") and s["kind"] == "manual" else ""
    return f"{s['source_id']}{part} {str(s.get('date') or '')[:10]}「{s['text'][:70]}」"


@conflicts_app.callback()
def conflicts_list(
    ctx: typer.Context,
    status: str = typer.Option("open", help="open | resolved | gone | all"),
    kind: Optional[str] = typer.Option(None, help="case_case | manual_newer | commitment_note"),
    limit: int = typer.Option(200, min=1, max=5000),
    as_json: bool = typer.Option(False, "--json", help="Print the list as JSON."),
) -> None:
    """List conflicts (open ones by default): both sides, their dates and why."""
    if ctx.invoked_subcommand is not None:
        return
    from hikitsugi.access.policy import Reads
    from hikitsugi.insights.conflicts import list_conflicts

    session = _session()
    try:
        out = list_conflicts(session, get_settings(), None, Reads(), status=status, kind=kind, limit=limit)
    except ValueError as exc:
        _err(f"error: {exc}")
        raise typer.Exit(2)
    finally:
        session.close()
    if as_json:
        typer.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    c = out["counts"]
    typer.echo(f"conflicts: open {c.get('open', 0)}, resolved {c.get('resolved', 0)}, gone {c.get('gone', 0)}")
    for it in out["items"]:
        typer.echo(f"\n{it['id']}  {KIND_JA.get(it['kind'], it['kind'])}  score {it['score']:.1f}  {it['status']}"
                   + (f" → {it['resolution']}" if it.get("resolution") else ""))
        typer.echo(f"  古い: {_side(it['a'])}")
        typer.echo(f"  新しい: {_side(it['b'])}")
        for w in it["why"]:
            if w["signal"] != "similar":
                typer.echo(f"  なぜ: {w['text']}")


@conflicts_app.command("resolve")
def conflicts_resolve(
    conflict_id: str = typer.Argument(..., help="Conflict id (from `hikitsugi conflicts`)."),
    winner: str = typer.Option(..., help="a = the older side stands, b = the newer side wins, both = both valid "
                                         "in different conditions (say which in --note)."),
    note: Optional[str] = typer.Option(None, help="Why; required with --winner both."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Record a lead's decision on a conflict (stored and audited)."""
    from hikitsugi.insights.conflicts import NotFound, resolve

    session = _session()
    try:
        out = resolve(session, get_settings(), conflict_id, winner, note, None, _actor(), "cli")
    except NotFound as exc:
        _err(f"error: {exc}")
        raise typer.Exit(1)
    except ValueError as exc:
        _err(f"error: {exc}")
        raise typer.Exit(2)
    finally:
        session.close()
    typer.echo(json.dumps(out, ensure_ascii=False, indent=2) if as_json else
               f"resolved {out['id']}: {out['resolution']}")


@conflicts_app.command("detect")
def conflicts_detect() -> None:
    """Run conflict detection on the current knowledge base now (re-index runs it by itself)."""
    from hikitsugi.index.update import index_lock
    from hikitsugi.insights.conflicts import detect

    _setup_logging()
    settings = get_settings()
    with index_lock(settings, wait=True, command="conflicts detect"):
        session = _session()
        try:
            typer.echo(str(detect(session, settings)))
        finally:
            session.close()


@eval_app.command("conflicts")
def eval_conflicts(
    labels: Path = typer.Option(Path("eval/datasets/conflicts-ja/labels.yaml"), help="Labeled conflict set."),
    use_home: bool = typer.Option(False, "--use-home", help="Score the current home as it is (its corpus must be "
                                                            "the labeled set's) instead of ingesting into a "
                                                            "throw-away home."),
    tune: bool = typer.Option(False, "--tune", help="Also choose anchor and threshold on the dev half."),
    threshold: Optional[float] = typer.Option(None, help="Score at this threshold (default: conflict_threshold)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Precision and recall of conflict detection on a labeled set (strict: every detection counts)."""
    from hikitsugi.eval.conflicts import run_conflict_eval

    _setup_logging()
    settings = get_settings()
    try:
        out = run_conflict_eval(labels, settings, keep_home=settings.home if use_home else None,
                                threshold=threshold, do_tune=tune)
    except (FileNotFoundError, ValueError) as exc:
        _err(f"error: {exc}")
        raise typer.Exit(2)
    if as_json:
        typer.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    typer.echo(f"pairs: {out['pairs']} ({out['conflicts_labeled']} conflicts, {out['look_alikes_labeled']} look-alikes); "
               f"anchor {out['anchor']}, threshold {out['threshold']}")
    typer.echo(f"all:  precision {out['precision']}  recall {out['recall']}  detected {out['detected']} "
               f"(look-alikes flagged {out['look_alikes_flagged']}, not in the labels {out['unlabeled_detections']})")
    t = out["test"]
    typer.echo(f"test: precision {t['precision']}  recall {t['recall']}  ({t['pairs']} pairs)")
    for k, v in out["by_kind"].items():
        typer.echo(f"  {k:16} recall {v['recall']}  ({v['detected']}/{v['conflicts']}), look-alikes flagged "
                   f"{v['look_alikes_flagged']}/{v['look_alikes']}")
    for m in out["misses"]:
        typer.echo(f"  missed: {m['kind']} {m['a']} ↔ {m['b']} (score {m['score']}, {', '.join(m['signals']) or '-'}): "
                   f"{m['why']}")
    for m in out["false_alarms"]:
        typer.echo(f"  false alarm: {m['kind']} {m['a']} ↔ {m['b']} ({', '.join(m['signals'])}): {m['why']}")
    if "tuning" in out:
        tu = out["tuning"]
        typer.echo(f"tuned on dev: anchor {tu['anchor']} threshold {tu['threshold']} "
                   f"(dev precision {tu['dev']['precision']} recall {tu['dev']['recall']})")


@drafts_app.callback()
def drafts_list(
    ctx: typer.Context,
    days: Optional[int] = typer.Option(None, min=1, help="Window of the content gaps (default analytics_days)."),
    limit: int = typer.Option(20, min=1, max=500, help="Gap clusters, biggest first."),
    out: Optional[Path] = typer.Option(None, help="Also write one Markdown file per draft into this folder."),
    as_json: bool = typer.Option(False, "--json", help="Print the drafts as JSON (with each sentence's sources)."),
) -> None:
    """A Markdown draft article per content gap: phrasings, and symptoms / cause / fix from later cases."""
    if ctx.invoked_subcommand is not None:
        return
    from hikitsugi.insights.drafts import build_drafts
    from hikitsugi.insights.reports import TRUSTED

    _setup_logging()
    session = _session()
    try:
        drafts = build_drafts(session, get_settings(), days, limit, scope=TRUSTED)  # the owner of the files
    finally:
        session.close()
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for d in drafts:
            (out / f"gap-{d.id}.md").write_text(d.markdown, encoding="utf-8")
        _err(f"wrote {len(drafts)} drafts to {out}")
    if as_json:
        typer.echo(json.dumps([d.to_dict() for d in drafts], ensure_ascii=False, indent=2))
        return
    if not drafts:
        typer.echo("no content gaps in the window: nothing to draft")
    for d in drafts:
        typer.echo(f"<!-- draft {d.id}: {d.searches} searches, {len(d.cases)} cases; "
                   f"accept with: hikitsugi drafts accept {d.id} -->")
        typer.echo(d.markdown)


@drafts_app.command("accept")
def drafts_accept(
    draft_id: str = typer.Argument(..., help="Draft id (from `hikitsugi drafts`)."),
    days: Optional[int] = typer.Option(None, min=1, help="Window the draft was listed with."),
    ingest: bool = typer.Option(True, help="Ingest it as a manual now."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Write a draft into the knowledge folder (audited) and ingest it as a manual."""
    from hikitsugi.insights.drafts import NotFound, accept
    from hikitsugi.insights.reports import TRUSTED

    _setup_logging()
    session = _session()
    try:
        out = accept(session, get_settings(), draft_id, _actor(), source="cli", ingest=ingest, days=days,
                     scope=TRUSTED)
    except NotFound as exc:
        _err(f"error: {exc}")
        raise typer.Exit(1)
    finally:
        session.close()
    if out.get("warning"):
        _err(f"warning: {out['warning']}")
    typer.echo(json.dumps(out, ensure_ascii=False, indent=2) if as_json else f"accepted: {out['path']}")
