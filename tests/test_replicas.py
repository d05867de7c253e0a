"""Several API replicas on one PostgreSQL database.

Two real `hikitsugi serve` processes, each with its own home (as on two machines) and the
same database URL, serve the generation published there. Under load from several
clients, a re-index (in a third home) publishes a new generation: each replica rebuilds
it from the stored vectors and switches by itself. Zero errors, and every response is
exactly what its generation answers when nothing moves (no half-switched or partly
purged result list). Keys, grants, audit, feedback and the search log are the
database's, so any replica answers any request; the rate limit of a key holds across
replicas. Figures go to tests/artifacts/replica_switch.json.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from hikitsugi.access.principals import assign, create_key, revoke_key
from hikitsugi.api.limits import DatabaseRateLimiter
from hikitsugi.config import Settings
from hikitsugi.index.snapshot import current_name
from hikitsugi.index.update import reindex
from hikitsugi.ingest.sources import load_sources
from hikitsugi.storage.database import session_for

from cluster_corpus import QUERIES, change_resolutions, write_corpus
from conftest import REPO, free_port
from corpus import change_and_delete_rows, change_manual
from pg import db_url, pg_server  # noqa: F401  (fixtures)

ARTIFACT = REPO / "tests" / "artifacts" / "replica_switch.json"
SWITCH_WITHIN_S = 60  # poll 0.5 s + rebuilding ~300 chunks here; measured figures in the artifact


class Replica:
    def __init__(self, name: str, home: Path, url: str, model: Path, *, serve: bool = True, **env: str) -> None:
        self.name, self.home, self.port = name, home, free_port()
        home.mkdir(parents=True, exist_ok=True)
        e = {k: v for k, v in os.environ.items() if not k.startswith("HIKITSUGI_")}
        e.update(HIKITSUGI_HOME=str(home), HIKITSUGI_DATABASE_URL=url, HIKITSUGI_MODEL=str(model),
                 HIKITSUGI_GENERATION_POLL_S="0.5", HIKITSUGI_RATE_LIMIT_PER_S="1000", HIKITSUGI_RATE_LIMIT_BURST="1000",
                 HIKITSUGI_SECRET_KEY=os.environ["HIKITSUGI_SECRET_KEY"], HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        e.update(env)
        cmd = ([sys.executable, "-m", "hikitsugi", "serve", "--port", str(self.port)] if serve else
               [sys.executable, "-m", "uvicorn", "--factory", "hikitsugi.api.app:create_app", "--port", str(self.port),
                "--log-level", "warning"])
        self.log = open(home / "server.log", "w")
        self.proc = subprocess.Popen(cmd, env=e, cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 300) -> dict:
        deadline = time.time() + timeout
        while time.time() < deadline:
            assert self.proc.poll() is None, (self.home / "server.log").read_text()
            try:
                r = httpx.get(self.base + "/healthz", timeout=2)
                if r.status_code == 200:
                    return r.json()
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"{self.name} did not start:\n{(self.home / 'server.log').read_text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture()
def replicas_factory():
    made: list[Replica] = []

    def make(*args, **kw) -> Replica:
        r = Replica(*args, **kw)
        made.append(r)
        return r

    yield make
    for r in made:
        r.stop()


def _key(results: list[dict]) -> list[tuple]:
    return [(r["source_id"], r["passage"], round(r["score"], 3)) for r in results]


def _search(client: httpx.Client, base: str, key: str, q: str) -> httpx.Response:
    return client.post(base + "/search", json={"query": q, "k": 10}, headers={"X-API-Key": key})


@pytest.mark.slow
def test_two_replicas_switch_generation_under_load(tmp_path, pg_server, model_dir, replicas_factory):
    url = pg_server.new_database()
    root = tmp_path / "corpus"
    sources, rows = write_corpus(root, 120, files=2)
    job = Settings(home=tmp_path / "job", database_url=url, model=str(model_dir), purge_grace_s=0)
    r1 = reindex(load_sources(sources).entries, job)
    gen1 = r1.snapshot
    session = session_for(url)
    try:
        key_row, key = create_key(session, "sato", "agent", "tests")
        _, admin = create_key(session, "admin", "admin", "tests")
    finally:
        session.close()

    reps = [replicas_factory(f"replica-{i}", tmp_path / f"replica-{i}", url, model_dir) for i in (1, 2)]
    for rep in reps:  # each built the published generation from the database before serving
        assert rep.wait_ready()["index"] == gen1
        assert current_name(rep.home / "index") == gen1
    queries = QUERIES + ["紙詰まりが何度も起きる", "メールが届かない"]
    expected: dict[str, dict[str, list]] = {gen1: {}}
    with httpx.Client(timeout=60) as c:
        for q in queries:
            answers = [_search(c, rep.base, key, q).json() for rep in reps]
            assert answers[0]["generation"] == answers[1]["generation"] == gen1
            assert _key(answers[0]["results"]) == _key(answers[1]["results"])  # same generation, same answer
            expected[gen1][q] = _key(answers[0]["results"])

    # load: 4 clients, each alternating between the replicas, while a re-index publishes gen2
    log: list[tuple] = []  # (t, replica index, status, generation, query, results key, latency s)
    stop = threading.Event()

    def client(n: int) -> None:
        with httpx.Client(timeout=60) as c:
            i = n
            while not stop.is_set():
                q, rep = queries[i % len(queries)], i % 2
                t = time.perf_counter()
                try:
                    r = _search(c, reps[rep].base, key, q)
                    body = r.json() if r.status_code == 200 else {}
                    log.append((time.time(), rep, r.status_code, body.get("generation"), q,
                                _key(body.get("results", [])), time.perf_counter() - t))
                except httpx.HTTPError as exc:
                    log.append((time.time(), rep, repr(exc), None, q, [], time.perf_counter() - t))
                i += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    time.sleep(3)
    change_manual(root)
    change_and_delete_rows(root)  # no effect on this corpus's CSVs; the manual change is what moves
    changed = change_resolutions(root, rows, every=6, tag="切替試験", files=2)
    r2 = reindex(load_sources(sources).entries, job)
    published = time.time()
    gen2 = r2.snapshot
    assert gen2 and gen2 != gen1 and r2.docs_changed == changed + 1
    deadline = time.time() + SWITCH_WITHIN_S + 30
    while time.time() < deadline:  # until both replicas have answered from gen2 for 3 s
        recent = [e for e in log if e[0] > time.time() - 3]
        if any(e[3] == gen2 for e in log if e[1] == 0) and any(e[3] == gen2 for e in log if e[1] == 1) and \
                recent and all(e[3] == gen2 for e in recent):
            break
        time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(timeout=120)

    expected[gen2] = {}
    with httpx.Client(timeout=60) as c:
        for q in queries:
            answers = [_search(c, rep.base, key, q).json() for rep in reps]
            assert answers[0]["generation"] == answers[1]["generation"] == gen2
            assert _key(answers[0]["results"]) == _key(answers[1]["results"])
            expected[gen2][q] = _key(answers[0]["results"])
    assert any(expected[gen1][q] != expected[gen2][q] for q in queries)  # the switch is visible in answers

    errors = [e for e in log if e[2] != 200]
    assert not errors, errors[:5]
    wrong = [e for e in log if e[3] not in expected or e[5] != expected[e[3]][e[4]]]
    assert not wrong, wrong[:3]  # every response is exactly its generation's answer
    figures: dict = {"requests": len(log), "errors": len(errors), "clients": 4,
                     "load_s": round(log[-1][0] - log[0][0], 1), "generation_chunks": r1.chunks_written,
                     "changed_chunks": r2.chunks_written}
    for i, rep in enumerate(reps):
        mine = [e for e in log if e[1] == i]
        first_new = min(e[0] for e in mine if e[3] == gen2)
        assert not [e for e in mine if e[0] > first_new + 1 and e[3] == gen1]  # never back to the old one
        figures[rep.name] = {"requests": len(mine), "switched_after_publish_s": round(first_new - published, 2)}
        assert first_new - published <= SWITCH_WITHIN_S
    lat = sorted(e[6] * 1000 for e in log)
    figures.update(p50_ms=round(statistics.median(lat), 1), p95_ms=round(lat[int(0.95 * (len(lat) - 1))], 1),
                   requests_per_s=round(len(log) / max(1e-9, log[-1][0] - log[0][0]), 1))
    during = [e[6] * 1000 for e in log if published - 1 <= e[0] <= published + max(
        figures[r.name]["switched_after_publish_s"] for r in reps) + 1]
    figures["during_switch"] = {"requests": len(during), "max_ms": round(max(during), 1) if during else None}

    # access state is the database's: any replica answers any request
    with httpx.Client(timeout=60) as c:
        s = _search(c, reps[0].base, key, "複合機が起動しない").json()
        fb = c.post(reps[1].base + "/feedback", json={"outcome": "resolved", "search_id": s["search_id"],
                                                       "source_id": s["results"][0]["source_id"]},
                    headers={"X-API-Key": key})
        assert fb.status_code == 201 and fb.json()["query"] == "複合機が起動しない", fb.text
        assert fb.json()["result_ids"] == [r["source_id"] for r in s["results"]]  # logged by the other replica
        session = session_for(url)
        try:
            assign(session, "sato", "C001", by="tests")
        finally:
            session.close()
        for rep in reps:  # an access change made anywhere is in every replica's audit log
            audit = c.get(rep.base + "/admin/audit", params={"action": "assign"}, headers={"X-API-Key": admin})
            assert audit.status_code == 200 and any(e["target"] == "customer:C001" for e in audit.json()["events"]), \
                audit.text
        session = session_for(url)
        try:
            assert revoke_key(session, key_row.key_id, by="tests")
        finally:
            session.close()
        for rep in reps:  # a revoked key stops working on every replica at once
            assert _search(c, rep.base, key, "複合機").status_code == 401
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.write_text(json.dumps(figures, ensure_ascii=False, indent=2))
    print(json.dumps(figures, ensure_ascii=False, indent=2))


def test_rate_limit_holds_across_replicas(tmp_path, pg_server, model_dir, replicas_factory):
    """Two API processes on one database share a key's bucket: burst 4 in all, not 4 each."""
    url = pg_server.new_database()
    session = session_for(url)
    try:
        _, key = create_key(session, "sato", "agent", "tests")
    finally:
        session.close()
    limited = {"HIKITSUGI_RATE_LIMIT_PER_S": "0.2", "HIKITSUGI_RATE_LIMIT_BURST": "4"}
    reps = [replicas_factory(f"api-{i}", tmp_path / f"api-{i}", url, model_dir, serve=False, **limited) for i in (1, 2)]
    for rep in reps:
        rep.wait_ready()
    with httpx.Client(timeout=30) as c:
        codes = [c.get(reps[i % 2].base + "/documents/NO-SUCH", headers={"X-API-Key": key}).status_code
                 for i in range(8)]
        assert codes[:4] == [404] * 4 and codes[4:] == [429] * 4, codes
        r = c.get(reps[1].base + "/documents/NO-SUCH", headers={"X-API-Key": key})
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1


def test_database_rate_limiter_buckets(tmp_path, db_url):
    """The shared token bucket on each database: burst, refill on the database's clock, per key."""
    url = db_url or f"sqlite:///{tmp_path / 'limits.db'}"
    lim = DatabaseRateLimiter(url, per_s=5.0, burst=3)
    waits = [lim.take("k1") for _ in range(4)]
    assert waits[:3] == [0.0, 0.0, 0.0] and 0 < waits[3] <= 0.2 + 1e-6
    assert lim.take("k2") == 0.0  # another key has its own bucket
    time.sleep(0.25)  # 5 tokens/s: one more request after 0.2 s
    assert lim.take("k1") == 0.0 and lim.take("k1") > 0
    other = DatabaseRateLimiter(url, per_s=5.0, burst=3)  # a second process would see the same bucket
    assert other.take("k1") > 0
    # what one request pays for the shared bucket (recorded, not asserted: the machine is shared)
    fast = DatabaseRateLimiter(url, per_s=1e6, burst=10**6)
    times = []
    for _ in range(100):
        t = time.perf_counter()
        fast.take("timing")
        times.append((time.perf_counter() - t) * 1000)
    out = REPO / "tests" / "artifacts" / "rate_limiter.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(out.read_text()) if out.exists() else {}
    data["postgresql" if db_url else "sqlite"] = {"allow_ms_p50": round(statistics.median(times), 2),
                                                  "allow_ms_p95": round(sorted(times)[94], 2)}
    out.write_text(json.dumps(data, indent=2))
