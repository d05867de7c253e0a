"""``hikitsugi config``: the settings reference and the settings in force."""

from __future__ import annotations

import json

import typer

from hikitsugi.cli.common import app
from hikitsugi.config import get_settings, reference_markdown

config_app = typer.Typer(no_args_is_help=True, help="Settings: the reference and what is in force.")
app.add_typer(config_app, name="config")


@config_app.command("reference")
def reference() -> None:
    """Print the settings reference as Markdown (this is docs/configuration.md)."""
    typer.echo(reference_markdown(), nl=False)


@config_app.command("show")
def show(as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """Print the settings in force (environment, then $HIKITSUGI_HOME/config.toml, then defaults); secrets hidden."""
    from hikitsugi.guidance.rules import rules_path
    from hikitsugi.search.synonyms import synonyms_path

    settings = get_settings()
    data = json.loads(settings.model_dump_json())
    data["secret_key"] = "(set)" if settings.secret_key.get_secret_value() else "(unset)"
    data["database_url"] = settings.db_url.split("@")[-1] if "@" in settings.db_url else settings.db_url
    data["synonyms_file (in force)"] = str(synonyms_path(settings))
    data["rules_file (in force)"] = str(rules_path(settings))
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    for k, v in data.items():
        typer.echo(f"{k} = {v}")
