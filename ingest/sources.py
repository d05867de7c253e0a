"""The sources file: what ``hikitsugi reindex`` keeps the index in line with.

YAML, at ``$HIKITSUGI_HOME/sources.yaml`` unless ``--sources FILE`` is given::

    sources:
      - path: manuals/                 # a folder (relative paths: relative to this file)
        glob: "**/*.md"                # optional: only these files (default: every supported file)
      - path: exports/escalations.csv  # or a single file
        kind: case                     # optional: force the kind of every document (case, note, manual, customer)
        mapping:                       # optional: column mapping for exports (field: column header)
          body: 症状
          resolution: 対応内容
      - path: exports/notes.csv
        mapping: mappings/notes.yaml   # ... or the path of a mapping file

A bare list (without the ``sources:`` key) is accepted too. Pure: no database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hikitsugi.ingest.columns import ALIASES, load_mapping

KINDS = ("manual", "case", "note", "customer")
_KEYS = {"path", "glob", "kind", "mapping"}


class SourcesError(ValueError):
    """The sources file is missing or malformed; the message says where and why."""


@dataclass
class SourceEntry:
    path: Path  # absolute
    glob: str | None = None
    kind: str | None = None
    mapping: dict[str, str] = field(default_factory=dict)

    @property
    def root(self) -> str:
        return str(self.path)


@dataclass
class SourcesSpec:
    file: Path | None
    entries: list[SourceEntry]


def _entry(raw: Any, i: int, base: Path, where: Path) -> SourceEntry:
    if isinstance(raw, str):
        raw = {"path": raw}
    if not isinstance(raw, dict) or "path" not in raw:
        raise SourcesError(f"{where}: entry {i}: expected a mapping with at least 'path'")
    unknown = set(raw) - _KEYS
    if unknown:
        raise SourcesError(f"{where}: entry {i}: unknown key(s) {', '.join(sorted(unknown))}; "
                           f"allowed: {', '.join(sorted(_KEYS))}")
    path = Path(str(raw["path"])).expanduser()
    path = (path if path.is_absolute() else base / path).absolute()
    glob = raw.get("glob")
    if glob is not None and (not isinstance(glob, str) or not glob.strip()):
        raise SourcesError(f"{where}: entry {i}: 'glob' must be a non-empty string such as '**/*.md'")
    kind = raw.get("kind")
    if kind is not None and kind not in KINDS:
        raise SourcesError(f"{where}: entry {i}: kind must be one of {', '.join(KINDS)}, not {kind!r}")
    mapping_raw = raw.get("mapping") or {}
    if isinstance(mapping_raw, str):
        mpath = Path(mapping_raw).expanduser()
        mpath = mpath if mpath.is_absolute() else base / mpath
        try:
            mapping = load_mapping(mpath)
        except (OSError, ValueError) as exc:
            raise SourcesError(f"{where}: entry {i}: mapping file {mpath}: {exc}") from None
    elif isinstance(mapping_raw, dict):
        mapping = {str(k): str(v) for k, v in mapping_raw.items()}
    else:
        raise SourcesError(f"{where}: entry {i}: 'mapping' is a mapping (field: column header) or a file name")
    bad = [k for k in mapping if k not in ALIASES]
    if bad:
        raise SourcesError(f"{where}: entry {i}: unknown mapping field(s) {', '.join(bad)}; known: {', '.join(ALIASES)}")
    return SourceEntry(path, glob, kind, mapping)


def load_sources(path: Path) -> SourcesSpec:
    """Read and check a sources file; raises :class:`SourcesError` with a useful message."""
    path = path.expanduser().absolute()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SourcesError(f"{path}: no sources file (create it, or pass --sources FILE; see docs/operations.md)") \
            from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SourcesError(f"{path}: cannot read sources file: {exc}") from None
    if isinstance(data, dict):
        if "sources" not in data:
            raise SourcesError(f"{path}: expected a top-level 'sources:' list")
        data = data["sources"]
    if not isinstance(data, list):
        raise SourcesError(f"{path}: 'sources' must be a list of entries with 'path'")
    entries = [_entry(raw, i, path.parent, path) for i, raw in enumerate(data, 1)]
    return SourcesSpec(path, entries)
