"""Operations commands (re-index, index rebuild) registered on the main ``hikitsugi`` app.

``hikitsugi reindex`` is the nightly job: it brings the index in line with the sources
file and exits 0 when everything went in, 1 when a file or a source failed (the rest is
still indexed and published), 2 for a bad sources file and 3 when another run holds
the lock. ``hikitsugi index rebuild`` recreates the vector and lexical index from the
stored vectors without re-embedding.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import typer

from hikitsugi.cli.common import _err, _report_columns, _setup_logging, app
from hikitsugi.config import get_settings

CLUSTER_FAILED_EXIT = 4
index_app = typer.Typer(no_args_is_help=True, help="The vector and lexical index.")
app.add_typer(index_app, name="index")


def _summary(report, what: str) -> str:
    return (f"{what}: files added {report.files_added}, changed {report.files_changed}, "
            f"deleted {report.files_deleted}, failed {report.files_failed}, unchanged {report.files_unchanged}; "
            f"documents +{report.docs_added} ~{report.docs_changed} -{report.docs_deleted}; "
            f"chunks embedded {report.chunks_embedded}; index {report.snapshot or 'unchanged'}; "
            f"time {report.seconds}s ("
            + ", ".join(f"{k} {v:.1f}s" for k, v in report.timings.items()) + ")")


def _cluster_summary(cluster: dict) -> str:
    nodes = "; ".join(f"{w['address']}: files {w['files']}, texts {w['texts']} in {w['busy_s']:.1f}s"
                      for w in cluster["nodes"].values())
    return f"ray {cluster['address']}: {cluster['cpus']} CPUs; {nodes or 'no task ran'}"


@app.command()
def reindex(
    sources: Optional[Path] = typer.Option(None, help="Sources file (YAML). Default: $HIKITSUGI_HOME/sources.yaml."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    wait: bool = typer.Option(False, help="Wait for a running re-index instead of exiting with code 3."),
    ray: Optional[str] = typer.Option(None, "--ray", metavar="auto|ADDRESS|local",
                                      help="Parse and embed on a Ray cluster (the 'ray' extra of hikitsugi): 'auto' "
                                           "= the cluster this machine is part of (or RAY_ADDRESS), 'host:6379' or "
                                           "'ray://host:10001', or 'local' for a throw-away cluster on this machine."),
) -> None:
    """Bring the index in line with the sources file (the nightly job).

    New and changed files are ingested (only changed chunks are embedded), documents of
    deleted files disappear, and a new index generation is switched to atomically while
    queries keep being served. Exit codes: 0 ok, 1 something failed, 2 bad sources file,
    3 another re-index is running, 4 the Ray cluster could not finish (nothing new was
    published; the previous index keeps serving; the next run continues).
    """
    from hikitsugi.index.distributed import ClusterError
    from hikitsugi.index.update import LOCK_BUSY_EXIT, LockBusy
    from hikitsugi.index.update import reindex as do_reindex
    from hikitsugi.ingest.sources import SourcesError, load_sources

    _setup_logging()
    settings = get_settings()
    path = sources or settings.home / "sources.yaml"
    try:
        spec = load_sources(path)
    except SourcesError as exc:
        _err(f"error: {exc}")
        raise typer.Exit(2)
    try:
        report = do_reindex(spec.entries, settings, wait_lock=wait, ray=ray)
    except LockBusy as exc:
        _err(f"error: {exc}")
        raise typer.Exit(LOCK_BUSY_EXIT)
    except ClusterError as exc:
        _err(f"error: {exc} — nothing new was published; the previous index keeps serving")
        raise typer.Exit(CLUSTER_FAILED_EXIT)
    _report_columns(report.columns)
    for p in report.problems:
        _err(f"warning: {p}")
    if as_json:
        typer.echo(json.dumps({**asdict(report), "sources": str(spec.file)}, ensure_ascii=False, indent=2))
    else:
        typer.echo(_summary(report, "reindex"))
        if report.cluster:
            typer.echo(_cluster_summary(report.cluster))
    raise typer.Exit(1 if report.files_failed else 0)


@index_app.command("rebuild")
def index_rebuild(as_json: bool = typer.Option(False, "--json", help="Print the report as JSON.")) -> None:
    """Recreate the vector and lexical index from stored vectors; nothing is re-embedded.

    Nothing is parsed either; the new generation is switched to atomically, like a
    re-index. Exit code 3 when another run holds the lock."""
    from hikitsugi.index.update import LOCK_BUSY_EXIT, LockBusy, rebuild_index

    _setup_logging()
    settings = get_settings()
    try:
        report = rebuild_index(settings)
    except LockBusy as exc:
        _err(f"error: {exc}")
        raise typer.Exit(LOCK_BUSY_EXIT)
    except RuntimeError as exc:
        _err(f"error: {exc}")
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps(asdict(report), ensure_ascii=False, indent=2))
    else:
        typer.echo(f"index rebuilt: {report.snapshot}; chunks embedded {report.chunks_embedded}; "
                   f"time {report.seconds}s")
