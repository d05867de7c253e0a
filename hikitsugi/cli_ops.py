"""Operations commands (re-index, index rebuild) registered on the main ``hikitsugi`` app."""

from __future__ import annotations

from hikitsugi.cli import app  # noqa: F401  (commands below register on it)
