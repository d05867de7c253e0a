"""The ``hikitsugi`` command.

Each module registers its commands on the tree in :mod:`hikitsugi.cli.common`; importing
them here is what puts them on the command line. Data goes to stdout (``--json`` for
machines); progress, logs and problems go to stderr.
"""

from __future__ import annotations

# isort: off  (the order is the order of `hikitsugi --help`)
from hikitsugi.cli import commands, ops, live, access, knowledge, settings  # noqa: F401  (each registers its commands)
# isort: on
from hikitsugi.cli.common import app

__all__ = ["app", "main"]


def main() -> None:  # console entry point
    app()
