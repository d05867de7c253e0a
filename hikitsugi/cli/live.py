"""Commands over the recorded feedback, registered on the main ``hikitsugi`` app.

``hikitsugi eval live`` reports the live self-resolution rate by week from the outcomes
agents recorded (「解決した」「役に立たなかった」「エスカレーションした」).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from hikitsugi.cli.common import _err, _setup_logging, app, eval_app  # noqa: F401  (app: the command tree these join)
from hikitsugi.config import get_settings


@eval_app.command("live")
def eval_live(
    weeks: Optional[int] = typer.Option(None, min=1, help="Only the last N weeks (default: all recorded)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    out: Optional[Path] = typer.Option(None, help="Write live.json and live.html (with the weekly plot) here."),
) -> None:
    """Live self-resolution rate by week, from the feedback recorded by the search box, page and API."""
    from hikitsugi.eval.live import live_deflection, write_live_report

    _setup_logging()
    result = live_deflection(get_settings(), weeks)
    if out is not None:
        _err(f"report: {write_live_report(out, result)}")
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False, indent=2))
        return
    t = result["total"]
    rate = "-" if t["self_resolution_rate"] is None else f"{t['self_resolution_rate']:.1%}"
    typer.echo(f"searches: {t['searches']}  with an outcome: {t['outcomes']}  resolved: {t['resolved']}  "
               f"escalated: {t['escalated']}  not helpful: {t['not_helpful']}  self-resolution: {rate}")
    typer.echo(f"{'week':9} {'from':10} {'rate':>7} {'resolved':>8} {'escal.':>6} {'n/help':>6} {'outcomes':>8} "
               f"{'searches':>8}")
    for w in result["weeks"]:
        r = "-" if w["self_resolution_rate"] is None else f"{w['self_resolution_rate']:.1%}"
        typer.echo(f"{w['week']:9} {w['week_start']:10} {r:>7} {w['resolved']:8} {w['escalated']:6} "
                   f"{w['not_helpful']:6} {w['outcomes']:8} {w['searches']:8}")
