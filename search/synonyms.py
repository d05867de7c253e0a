"""Synonyms and customer vocabulary, from an editable data file.

Expansion happens at query time on the lexical side only, so editing the file takes
effect on the next query and never requires re-embedding. The dense side already
relates クレーム and 苦情 by meaning; what it misses is the team's own jargon and
product nicknames, which is what this file is for. The file is re-read when its
modification time changes.
"""

from __future__ import annotations

import threading
from pathlib import Path

import yaml

from hikitsugi.config import ConfigError, Settings, data_file
from hikitsugi.index.lexical import tokenize
from hikitsugi.ingest.normalize import fold_for_lexical, normalize

_lock = threading.Lock()
_cache: dict[str, tuple[float, list[list[str]]]] = {}


def synonyms_path(settings: Settings) -> Path:
    """The synonyms file in force (see :func:`hikitsugi.config.data_file`)."""
    return data_file(settings.synonyms_file, settings.home, "synonyms.yaml", "synonyms_file")


def load_groups(path: Path) -> list[list[str]]:
    """Groups of folded terms; a malformed file is an error naming the file and the line."""
    mtime = path.stat().st_mtime
    key = str(path)
    with _lock:
        hit = _cache.get(key)
        if hit and hit[0] == mtime:
            return hit[1]
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: invalid YAML ({exc})") from exc
        if not isinstance(data, list) or not all(isinstance(g, list) for g in data):
            raise ConfigError(f"{path}: expected a list of term lists, e.g. '- [クレーム, 苦情]'")
        groups = [[fold_for_lexical(normalize(str(t))) for t in g if str(t).strip()] for g in data]
        groups = [g for g in groups if len(g) > 1]
        _cache[key] = (mtime, groups)
        return groups


def expansions(query_norm: str, settings: Settings) -> list[str]:
    """The synonym terms to add for this (normalized) query."""
    folded = fold_for_lexical(query_norm)
    extra: list[str] = []
    for group in load_groups(synonyms_path(settings)):
        if any(term in folded for term in group):
            extra.extend(t for t in group if t not in folded)
    return extra


def synonym_tokens(query_norm: str, settings: Settings) -> list[str]:
    return [tok for term in expansions(query_norm, settings) for tok in tokenize(term)]
