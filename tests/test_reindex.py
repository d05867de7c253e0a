"""Store, ingest and re-index against real SQLite and a real PostgreSQL server.

Every test taking ``db_url`` runs twice: on SQLite under a fresh home and on a fresh
database of the throw-away PostgreSQL cluster from ``tests/pg.py``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, func, inspect, select, text

from hikitsugi.config import Settings
from hikitsugi.index.update import (
    LockBusy,
    index_lock,
    ingest_paths,
    rebuild_index,
    reindex,
)
from hikitsugi.ingest.sources import SourcesError, load_sources
from hikitsugi.storage.database import engine_for, session_for
from hikitsugi.storage.migrate import alembic_config, head_revision
from hikitsugi.storage.schema import Base, Document, Source

from conftest import REPO
from corpus import (
    CASES,
    MUTATIONS,
    QUERIES,
    assert_same_search,
    db_state,
    search_state,
    write_csv,
    write_v1,
)
from pg import db_url, pg_server  # noqa: F401  (fixtures)


@pytest.fixture()
def new_settings(make_home, model_dir, request):
    """Factory: Settings for a fresh home on the backend of this test's db_url."""

    def _make(db_url: str, name: str = "reindex") -> Settings:
        home = make_home(name)
        url = db_url
        if url and getattr(_make, "used", False):  # a second home on PostgreSQL needs its own database
            url = request.getfixturevalue("pg_server").new_database()
        _make.used = True
        return Settings(home=home, database_url=url, model=str(model_dir), purge_grace_s=0)

    return _make


_CLEAN: dict[str, tuple[dict, dict]] = {}


def _clean_build(sources: Path, new_settings, db_url: str) -> tuple[dict, dict]:
    """(documents with chunk texts, search results) of a clean build of these sources in a
    fresh home. Cached by the corpus's content, so that the SQLite and PostgreSQL runs of
    a test, which go through the same corpus states, build each state once."""
    root = sources.parent
    h = hashlib.sha256()
    for p in sorted(x for x in root.rglob("*") if x.is_file()):
        h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    key = h.hexdigest()
    if key not in _CLEAN:
        clean = new_settings(db_url, "clean")
        report = reindex(load_sources(sources).entries, clean)
        assert report.files_failed == 0, report.problems
        _CLEAN[key] = (db_state(clean), search_state(clean))
    return _CLEAN[key]


def _retired(settings: Settings) -> int:
    s = session_for(settings.db_url)
    try:
        return s.scalar(select(func.count()).select_from(Document).where(Document.retired_at.is_not(None)))
    finally:
        s.close()


def test_reindex_incremental_matches_clean_build(tmp_path, db_url, new_settings):
    sources = write_v1(tmp_path / "corpus")
    s = new_settings(db_url)
    entries = load_sources(sources).entries

    r1 = reindex(entries, s)
    assert (r1.files_added, r1.files_failed, r1.docs_added) == (4, 0, 3 + len(CASES)), r1
    assert r1.chunks_embedded > 0 and r1.snapshot
    assert set(r1.timings) >= {"parse", "chunk", "embed", "write", "snapshot"}

    r2 = reindex(entries, s)  # nothing changed: nothing parsed, embedded or rebuilt
    assert (r2.files_unchanged, r2.docs_added, r2.docs_changed, r2.docs_deleted, r2.chunks_embedded) == (4, 0, 0, 0, 0)
    assert r2.snapshot is None

    for mutate in MUTATIONS:
        mutate(tmp_path / "corpus")
    r3 = reindex(entries, s)
    assert (r3.files_added, r3.files_changed, r3.files_deleted, r3.files_failed) == (1, 2, 1, 0), r3
    assert (r3.docs_added, r3.docs_changed, r3.docs_deleted) == (1, 2, 2), r3
    state = db_state(s)
    scanner_chunks = len(state["scanner.md"][3])
    # only changed chunks are embedded: one section of printer.md, the resolution of
    # INC-24-0002, and the new manual; the unchanged section and symptom keep their vectors
    assert r3.chunks_embedded == 1 + 1 + scanner_chunks, r3
    assert "login.md" not in state and "INC-24-0006" not in state
    assert _retired(s) == 0  # old versions purged once the new generation was live

    found = search_state(s, QUERIES + ["請求書の金額が契約と違う"])
    ids = {sid for hits in found.values() for sid, _, _ in hits}
    assert "login.md" not in ids and "INC-24-0006" not in ids
    assert found["スキャンの解像度を変えたい"][0][0] == "scanner.md"
    assert found["スキャンしたメールが届かない"][0][0] == "INC-24-0002"
    assert "OAuth" in "".join(state["INC-24-0002"][3])

    clean_db, clean_search = _clean_build(sources, new_settings, db_url)
    assert clean_db == state
    assert_same_search(clean_search, search_state(s))


def test_failures_never_lose_documents(tmp_path, db_url, new_settings):
    root = tmp_path / "corpus"
    sources = write_v1(root)
    s = new_settings(db_url)
    reindex(load_sources(sources).entries, s)
    before = db_state(s)

    # a file that no longer parses: reported, its documents from the last good run kept
    (root / "escalations" / "cases.csv").write_bytes("a,b\r\n1,2\r\n".encode("cp932"))
    r = reindex(load_sources(sources).entries, s)
    assert r.files_failed == 1 and any("cases.csv" in p for p in r.problems), r
    assert db_state(s) == before

    # a listed folder that is missing, or empty where the index has files: kept, failed
    write_csv(root / "escalations" / "cases.csv", CASES)
    moved = tmp_path / "elsewhere"
    shutil.move(root / "manuals", moved)
    r = reindex(load_sources(sources).entries, s)
    assert r.files_failed == 1 and r.files_deleted == 0 and any("no such file" in p for p in r.problems), r
    (root / "manuals").mkdir()
    r = reindex(load_sources(sources).entries, s)
    assert r.files_failed == 1 and r.files_deleted == 0 and any("no files found" in p for p in r.problems), r
    assert db_state(s) == before

    # taking the entry out of the sources file is how a folder's documents are deleted
    sources.write_text("sources:\n  - path: escalations/cases.csv\n", encoding="utf-8")
    r = reindex(load_sources(sources).entries, s)
    assert (r.files_failed, r.files_deleted, r.docs_deleted) == (0, 3, 3), r
    assert set(db_state(s)) == {c[0] for c in CASES}


def test_kind_and_mapping_from_sources(tmp_path, db_url, new_settings):
    root = tmp_path / "corpus"
    write_csv(root / "crm.csv", [["N-1", "プリンターの紙詰まりについて電話があった", "ローラー清掃を案内"],
                                 ["N-2", "VPNがつながらないとの連絡", "ファームウェア更新を案内"]],
              headers=["チケット", "症状メモ", "処置結果"])
    sources = root / "sources.yaml"
    sources.write_text("sources:\n  - path: crm.csv\n    kind: note\n    mapping: {id: チケット, body: 症状メモ, "
                       "resolution: 処置結果}\n", encoding="utf-8")
    s = new_settings(db_url)
    r = reindex(load_sources(sources).entries, s)
    assert r.docs_added == 2 and r.files_failed == 0, r
    state = db_state(s)
    assert {k: v[0] for k, v in state.items()} == {"N-1": "note", "N-2": "note"}
    assert any("ローラー清掃" in t for t in state["N-1"][3])

    # same bytes, different mapping: the file is parsed again
    sources.write_text("sources:\n  - path: crm.csv\n    kind: note\n    mapping: {id: チケット, body: 症状メモ}\n",
                       encoding="utf-8")
    r = reindex(load_sources(sources).entries, s)
    assert (r.files_changed, r.docs_changed) == (1, 2), r
    assert not any("ローラー清掃" in t for t in db_state(s)["N-1"][3])


def test_index_rebuild_uses_stored_vectors(tmp_path, db_url, new_settings):
    sources = write_v1(tmp_path / "corpus")
    s = new_settings(db_url)
    reindex(load_sources(sources).entries, s)
    before = search_state(s)
    shutil.rmtree(s.index_dir)  # the vector index is gone entirely
    r = rebuild_index(s)
    assert r.snapshot and r.chunks_embedded == 0, r
    assert_same_search(search_state(s), before)


CORE_TABLES = {"sources", "documents", "chunks", "embeddings",
               "index_generations", "index_replicas", "rate_limit_buckets"}  # revision 0007


def _table_of(diff) -> str:
    """Table a compare_metadata() diff is about (other modules own other tables)."""
    d = diff[0] if isinstance(diff, list) else diff
    if d[0] in ("add_table", "remove_table"):
        return d[1].name
    if d[0] in ("add_index", "remove_index", "add_constraint", "remove_constraint", "add_fk", "remove_fk"):
        return d[1].table.name
    return d[2]


def test_migrations_fresh_and_legacy(tmp_path, db_url, new_settings):
    s = new_settings(db_url)
    engine = engine_for(s.db_url)
    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == head_revision()
        diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
        assert [d for d in diffs if _table_of(d) in CORE_TABLES] == []

    # a database made before migrations existed: baseline tables, old rows, no alembic_version
    legacy_url = (s.db_url.rsplit("/", 1)[0] + "/legacy.db" if not db_url
                  else new_settings(db_url).database_url)
    if not db_url:
        legacy_url = f"sqlite:///{tmp_path / 'legacy.db'}"
    cfg = alembic_config(legacy_url)
    command.upgrade(cfg, "0001")
    raw = create_engine(legacy_url)
    manuals = tmp_path / "corpus" / "manuals"
    write_v1(tmp_path / "corpus")
    with raw.begin() as conn:
        conn.execute(text("INSERT INTO sources (path, file_hash, size, status, ingested_at) "
                          "VALUES ('printer.md', 'old', 1, 'ok', CURRENT_TIMESTAMP)"))
        conn.execute(text("INSERT INTO documents (source_id, source_path, kind, title, content_hash, meta, updated_at) "
                          "VALUES ('printer.md', 'printer.md', 'manual', '旧版', 'old', '{}', CURRENT_TIMESTAMP)"))
        conn.execute(text("DROP TABLE alembic_version"))
    raw.dispose()
    assert not inspect(create_engine(legacy_url)).has_table("alembic_version")
    legacy = s.model_copy(update={"database_url": legacy_url})
    r = ingest_paths([manuals], legacy)
    # the old row is adopted and updated, not duplicated
    assert (r.docs_added, r.docs_changed, r.files_changed, r.files_added) == (2, 1, 1, 2), r
    state = db_state(legacy)
    assert set(state) == {"printer.md", "network.md", "login.md"}
    assert state["printer.md"][1] == "MX-3100 トラブルシューティング"
    session = session_for(legacy_url)
    try:
        assert all(os.path.isabs(p) for p in session.scalars(select(Source.path)))
    finally:
        session.close()


def test_sources_file_errors(tmp_path):
    with pytest.raises(SourcesError, match="no sources file"):
        load_sources(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    for body, msg in [("sources: 3", "must be a list"), ("sources:\n  - glob: '*.md'", "at least 'path'"),
                      ("sources:\n  - path: a\n    kind: memo", "kind must be one of"),
                      ("sources:\n  - path: a\n    colour: red", "unknown key"),
                      ("sources:\n  - path: a\n    mapping: {symptom: x}", "unknown mapping field")]:
        bad.write_text(body, encoding="utf-8")
        with pytest.raises(SourcesError, match=msg):
            load_sources(bad)
    (tmp_path / "m.yaml").write_text("body: 症状\n", encoding="utf-8")
    bad.write_text("- path: data\n  mapping: m.yaml\n", encoding="utf-8")
    spec = load_sources(bad)
    assert spec.entries[0].path == tmp_path / "data" and spec.entries[0].mapping == {"body": "症状"}


def test_second_run_is_refused_while_locked(tmp_path, make_home, model_dir):
    home = make_home("locked")
    sources = write_v1(tmp_path / "corpus")
    settings = Settings(home=home, model=str(model_dir))
    env = {**os.environ, "HIKITSUGI_HOME": str(home), "HIKITSUGI_MODEL": str(model_dir)}
    with index_lock(settings, command="reindex"):
        with pytest.raises(LockBusy):
            with index_lock(settings):
                pass
        r = subprocess.run([sys.executable, "-m", "hikitsugi", "reindex", "--sources", str(sources)], env=env,
                           cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 3, r.stderr
    assert f"another re-index is running (pid {os.getpid()}, started " in r.stderr
    with index_lock(settings):  # released again
        pass
