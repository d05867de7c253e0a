"""Real processes: a re-index killed with SIGKILL at several points, and a real server
answering queries while a re-index runs. SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from test_reindex import _clean_build, _retired, new_settings  # noqa: F401  (fixture)

from hikitsugi.config import Settings
from hikitsugi.index.snapshot import current_name
from hikitsugi.index.update import reindex
from hikitsugi.ingest.sources import load_sources

from conftest import REPO, free_port
from corpus import (
    QUERIES,
    add_manual,
    assert_same_search,
    change_and_delete_rows,
    change_manual,
    db_state,
    delete_manual,
    search_state,
    write_v1,
)
from pg import db_url, pg_server  # noqa: F401  (fixtures)

pytestmark = pytest.mark.slow


def _env(s: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HIKITSUGI_")}
    env.update(HIKITSUGI_HOME=str(s.home), HIKITSUGI_MODEL=s.model, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    if s.database_url:
        env["HIKITSUGI_DATABASE_URL"] = s.database_url
    env.update(extra)
    return env


class Proc:
    """A subprocess whose stderr is collected line by line in the background."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.p = subprocess.Popen([sys.executable, "-m", "hikitsugi", *args], env=env, cwd=REPO,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.err: list[str] = []
        self._t = threading.Thread(target=lambda: self.err.extend(iter(self.p.stderr.readline, "")), daemon=True)
        self._t.start()

    def wait_for(self, needle: str, timeout: float = 180) -> None:
        deadline = time.time() + timeout
        while not any(needle in line for line in self.err):
            if self.p.poll() is not None:
                raise AssertionError(f"exited {self.p.returncode} before '{needle}':\n" + "".join(self.err))
            if time.time() > deadline:
                self.p.kill()
                raise AssertionError(f"no '{needle}' after {timeout}s:\n" + "".join(self.err))
            time.sleep(0.05)

    def kill9(self) -> None:
        os.kill(self.p.pid, signal.SIGKILL)
        self.p.wait(timeout=30)
        assert self.p.returncode == -signal.SIGKILL


def _served_generation_is_complete(s: Settings) -> str:
    name = current_name(s.index_dir)
    assert name and (s.index_dir / name / "manifest.json").exists() and not name.startswith(".")
    return name


def _edit_network(root: Path) -> None:
    p = root / "manuals" / "network.md"
    p.write_text(p.read_text(encoding="utf-8").replace("固定に変更", "固定に変更し、ルーターを再起動"), encoding="utf-8")


KILL_POINTS = [
    ("parse", [change_manual, change_and_delete_rows]),  # one changed file committed, the other not
    ("embed", [add_manual]),  # the first batch of vectors committed, the rest not
    ("snapshot", [delete_manual]),  # new generation written to .gen-*.tmp, not switched to
    ("switch", [_edit_network]),  # switched, old versions not purged yet
]


def test_sigkill_at_each_stage_then_next_run_converges(tmp_path, db_url, new_settings):
    root = tmp_path / "corpus"
    sources = write_v1(root)
    s = new_settings(db_url)
    entries = load_sources(sources).entries
    reindex(entries, s)
    env = _env(s, HIKITSUGI_EMBED_BATCH_SIZE="1")  # 8 vectors per commit: several commits to die between
    for stage, mutations in KILL_POINTS:
        old_gen, old_state, old_search = current_name(s.index_dir), db_state(s), search_state(s)
        for m in mutations:
            m(root)
        proc = Proc(["reindex", "--sources", str(sources)], {**env, "HIKITSUGI_TEST_PAUSE_AT": stage})
        proc.wait_for(f"paused at {stage}")
        if stage == "parse":  # meanwhile, a second run is refused
            second = subprocess.run([sys.executable, "-m", "hikitsugi", "reindex", "--sources", str(sources)],
                                    env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
            assert second.returncode == 3, second.stderr
            assert f"another re-index is running (pid {proc.p.pid}, started " in second.stderr
        proc.kill9()

        # the last good index keeps serving, exactly as before (or the new one, once switched)
        gen = _served_generation_is_complete(s)
        if stage == "switch":
            assert gen != old_gen
        else:
            assert gen == old_gen, stage
            assert_same_search(search_state(s), old_search)
        if stage == "snapshot":
            assert list(s.index_dir.glob(".gen-*.tmp")), "the killed build should have left its temp dir"
        state = db_state(s)  # consistent: one live row per source id, every document whole
        assert all(chunks for *_, chunks in state.values())
        if stage == "parse":  # printer.md went in, cases.csv (next in line) not yet
            assert state["printer.md"] != old_state["printer.md"]
            assert state["INC-24-0006"] == old_state["INC-24-0006"]

        # the next run finishes the job
        r = reindex(entries, s)
        assert r.files_failed == 0, r.problems
        if stage == "embed":
            assert 0 < r.chunks_embedded < len(db_state(s)["scanner.md"][3]), r  # only what was missing
        if stage == "switch":
            assert r.snapshot is None and r.docs_purged > 0, r  # already live; only the purge was left
        assert not list(s.index_dir.glob(".gen-*.tmp"))
        assert _retired(s) == 0
        clean_db, clean_search = _clean_build(sources, new_settings, db_url)
        assert db_state(s) == clean_db, stage
        assert_same_search(search_state(s), clean_search)


def test_sigkill_at_random_moments(tmp_path, new_settings):
    """Kills at arbitrary points (inside transactions too), SQLite; every time the served
    index is whole and one more run converges to a clean build."""
    root = tmp_path / "corpus"
    sources = write_v1(root)
    s = new_settings("")
    entries = load_sources(sources).entries
    reindex(entries, s)
    env = _env(s, HIKITSUGI_EMBED_BATCH_SIZE="1")
    p = root / "manuals" / "printer.md"
    base = p.read_text(encoding="utf-8")
    for i, delay in enumerate([2.0, 5.0]):
        p.write_text(base + f"\n## 追記{i}\n\n" + "用紙の向きを確認してください。" * (i + 1) + "\n", encoding="utf-8")
        if i % 2 == 0:
            add_manual(root)
        else:
            (root / "manuals" / "scanner.md").unlink(missing_ok=True)
        proc = Proc(["reindex", "--sources", str(sources)], env)
        time.sleep(delay)
        if proc.p.poll() is None:
            proc.kill9()
        _served_generation_is_complete(s)
        search_state(s)  # the served index answers
        db_state(s)
        r = reindex(entries, s)
        assert r.files_failed == 0
        clean_db, clean_search = _clean_build(sources, new_settings, "")
        assert db_state(s) == clean_db, delay
        assert_same_search(search_state(s), clean_search)


def _results(resp: httpx.Response) -> list[tuple[str, str]]:
    return [(r["source_id"], r["passage"]) for r in resp.json()["results"]]


def _api_key(s: Settings) -> str | None:
    """An admin key for the server (None when this build has no API keys)."""
    try:
        from hikitsugi.access.principals import create_key
    except ImportError:
        return None
    from hikitsugi.storage.database import session_for

    session = session_for(s.db_url)
    try:
        key = create_key(session, "ops", "admin", "reindex tests")[1]
        session.commit()
        return key
    finally:
        session.close()


def test_server_answers_during_reindex_from_old_or_new_index(tmp_path, db_url, new_settings):
    root = tmp_path / "corpus"
    sources = write_v1(root)
    s = new_settings(db_url)
    reindex(load_sources(sources).entries, s)
    port = free_port()
    log = open(tmp_path / "server.log", "w")
    # no per-key rate limit: this test hammers the server on purpose (bounded, loopback only)
    server = subprocess.Popen([sys.executable, "-m", "hikitsugi", "serve", "--port", str(port)],
                              env=_env(s, HIKITSUGI_RATE_LIMIT_PER_S="0"),
                              cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        key = _api_key(s)
        headers = {"X-API-Key": key} if key else {}
        client = httpx.Client(base_url=base, timeout=60, headers=headers)
        deadline = time.time() + 120
        while True:
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.time() < deadline, (tmp_path / "server.log").read_text()
            time.sleep(0.3)
        old_gen = client.get("/healthz").json()["index"]
        old = {q: _results(client.post("/search", json={"query": q, "k": 5})) for q in QUERIES}

        for m in (change_manual, change_and_delete_rows, delete_manual, add_manual):
            m(root)
        seen: list[tuple[int, str, list | None, float]] = []
        stop = threading.Event()

        def hammer() -> None:
            c = httpx.Client(base_url=base, timeout=60, headers=headers)
            i = 0
            t_end = time.time() + 300  # bounded, whatever happens
            while not stop.is_set() and time.time() < t_end:
                q = QUERIES[i % len(QUERIES)]
                i += 1
                resp = c.post("/search", json={"query": q, "k": 5})
                seen.append((resp.status_code, q, _results(resp) if resp.status_code == 200 else None, time.time()))
                time.sleep(0.02)

        t = threading.Thread(target=hammer, daemon=True)
        t.start()
        job = subprocess.run([sys.executable, "-m", "hikitsugi", "reindex", "--sources", str(sources)],
                             env=_env(s, HIKITSUGI_EMBED_BATCH_SIZE="2"), cwd=REPO, capture_output=True, text=True,
                             timeout=600)
        done_at = time.time()
        while not any(ts > done_at + 2 for *_, ts in seen):  # a few queries after the job, too
            time.sleep(0.2)
        stop.set()
        t.join(timeout=120)
        assert job.returncode == 0, job.stderr
        assert "reindex: files added 1, changed 2, deleted 1, failed 0" in job.stdout

        new_gen = client.get("/healthz").json()["index"]
        assert new_gen != old_gen  # the running server picked the new index up, no restart
        new = {q: _results(client.post("/search", json={"query": q, "k": 5})) for q in QUERIES}
        assert any(old[q] != new[q] for q in QUERIES)
        assert_same_search({q: [(a, b, 0) for a, b in v] for q, v in new.items()},
                           {q: [(a, b, 0) for a, b, _ in v] for q, v in search_state(s).items()})

        assert len(seen) >= 10 and all(code == 200 for code, *_ in seen), [x[:2] for x in seen if x[0] != 200]
        which = []
        for _, q, res, _ in seen:
            assert res in (old[q], new[q]), (q, res, old[q], new[q])
            which.append("old" if res == old[q] and res != new[q] else "new" if res == new[q] and res != old[q]
                         else "both")
        assert "old" in which and "new" in which, which
        last_old = max(i for i, w in enumerate(which) if w == "old")
        assert "old" not in which[last_old + 1:] and all(w != "old" for w in which[-3:])
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
