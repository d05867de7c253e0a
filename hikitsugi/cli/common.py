"""What every command module shares: the command tree and how problems are reported.

Data goes to stdout (``--json`` for machines); progress, logs and problems to stderr.
"""

from __future__ import annotations

import logging
import sys

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Hikitsugi: 引き継ぎナレッジ検索")
eval_app = typer.Typer(no_args_is_help=True, help="Offline evaluation.")
model_app = typer.Typer(no_args_is_help=True, help="The embedding model.")
app.add_typer(eval_app, name="eval")
app.add_typer(model_app, name="model")


def _setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("bm25s", "sentence_transformers", "transformers", "httpx", "faiss"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _err(msg: str) -> None:
    typer.echo(msg, err=True)


def _report_columns(columns: dict[str, list[str]]) -> None:
    """Say on stderr which column of each export was taken for which field, and how
    (mapping, name or values), so a wrong guess is seen before it skews anything."""
    for path, lines in columns.items():
        _err(f"columns: {path}:")
        for line in lines:
            _err(f"  {line}")
