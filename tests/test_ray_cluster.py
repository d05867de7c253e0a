"""`hikitsugi reindex --ray` on a real two-node Ray cluster on this machine.

The head and a second node are separate `ray start` processes with one CPU each
(hikitsugi.bench.raycluster). 2,080 cases in eight CP932 files are re-indexed through
both nodes into PostgreSQL; the result is compared with a single-process build (same
documents and chunks, vectors within 1e-5 cosine, same search results). Then the worker
node is killed with SIGKILL — every one of its processes — in the middle of a re-index:
the run either finishes on the head alone, or fails cleanly (exit 4) with the previous
generation serving; in both cases nothing is duplicated and the end state is that of a
single-process build. Timings go to tests/artifacts/ray_cluster.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from hikitsugi.bench.raycluster import LocalRayCluster
from hikitsugi.config import Settings
from hikitsugi.embedding.encoder import model_id
from hikitsugi.index.snapshot import current_name
from hikitsugi.index.update import reindex
from hikitsugi.ingest.sources import load_sources
from hikitsugi.storage.database import session_for
from hikitsugi.storage.schema import Chunk, Document, Embedding, IndexGeneration

from cluster_corpus import QUERIES, change_resolutions, write_corpus
from conftest import REPO
from corpus import assert_same_search, db_state, search_state
from pg import pg_server  # noqa: F401  (fixture)

pytestmark = pytest.mark.slow
CASES = 2080
ARTIFACT = REPO / "tests" / "artifacts" / "ray_cluster.json"


@pytest.fixture(scope="module")
def cluster(model_dir):
    env = {"HIKITSUGI_MODEL": str(model_dir), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    c = LocalRayCluster(env, cpus_per_node=1)
    try:
        c.start_head()
        c.add_node("worker")
        yield c
    finally:
        c.stop()
    assert c.leftover_pids() == [], "the test cluster left processes behind"


def _settings(home: Path, url: str, model: Path) -> Settings:
    return Settings(home=home, database_url=url, model=str(model), purge_grace_s=0)


def _env(s: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HIKITSUGI_")}
    env.update(HIKITSUGI_HOME=str(s.home), HIKITSUGI_DATABASE_URL=s.database_url, HIKITSUGI_MODEL=s.model,
               HIKITSUGI_PURGE_GRACE_S="0", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return env


def _ray_reindex(s: Settings, sources: Path, cluster: LocalRayCluster) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hikitsugi", "reindex", "--sources", str(sources), "--ray",
                             cluster.address, "--json"], env={**_env(s), **cluster.client_env()}, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen, timeout: float = 900) -> tuple[int, dict, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, (json.loads(out) if out.strip() else {}), err


def _by_port(report: dict) -> dict[int, dict]:
    return {int(w["address"].rsplit(":", 1)[1]): w for w in report["cluster"]["nodes"].values()}


def _vectors(s: Settings) -> dict[str, np.ndarray]:
    session = session_for(s.db_url)
    try:
        rows = session.execute(select(Embedding.embed_hash, Embedding.vector).where(Embedding.model == model_id(s))).all()
        return {h: np.frombuffer(v, dtype=np.float32) for h, v in rows}
    finally:
        session.close()


def _counts(s: Settings) -> tuple[int, int, int, int]:
    """(live documents, their chunks, stored vectors, published generations)."""
    session = session_for(s.db_url)
    try:
        docs = session.scalar(select(func.count()).select_from(Document).where(Document.retired_at.is_(None)))
        chunks = session.scalar(select(func.count()).select_from(Chunk).join(Document)
                                .where(Document.retired_at.is_(None)))
        vecs = session.scalar(select(func.count()).select_from(Embedding))
        gens = session.scalar(select(func.count()).select_from(IndexGeneration))
        return docs, chunks, vecs, gens
    finally:
        session.close()


def _assert_same_index(a: Settings, b: Settings) -> dict:
    state_a, state_b = db_state(a), db_state(b)
    assert state_a == state_b  # same documents, kinds, titles, paths and chunk texts
    va, vb = _vectors(a), _vectors(b)
    assert va and set(va) == set(vb)  # vectors stored under the encoder's key, the same hashes on both
    worst = min(float(np.dot(va[h], vb[h]) / (np.linalg.norm(va[h]) * np.linalg.norm(vb[h]))) for h in va)
    assert worst >= 1 - 1e-5, worst
    queries = QUERIES + ["紙詰まりが何度も起きる", "VPNにつながらない"]
    assert_same_search(search_state(a, queries, k=10), search_state(b, queries, k=10))
    return {"documents": len(state_a), "vectors": len(va), "min_cosine": worst}


def test_ray_reindex_two_nodes_equals_single_process_and_survives_losing_a_node(tmp_path, cluster, pg_server,
                                                                                model_dir):
    figures: dict = {"cases": CASES, "cpus_per_node": 1}
    root = tmp_path / "corpus"
    sources, rows = write_corpus(root, CASES)
    ray_s = _settings(tmp_path / "ray-home", pg_server.new_database(), model_dir)
    one_s = _settings(tmp_path / "single-home", pg_server.new_database(), model_dir)
    head, worker = cluster.nodes[0], cluster.nodes[1]

    # 1. through both nodes
    t = time.perf_counter()
    rc, report, err = _finish(_ray_reindex(ray_s, sources, cluster))
    figures["two_nodes"] = {"wall_s": round(time.perf_counter() - t, 1), "embed_s": report.get("timings", {}).get("embed"),
                            "texts": report.get("chunks_embedded", 0) + report.get("sentences_embedded", 0)}
    assert rc == 0, err
    assert report["files_added"] == 11 and report["docs_added"] == CASES + 3 and report["files_failed"] == 0
    nodes = _by_port(report)
    figures["two_nodes"]["per_node"] = {("head" if p == head.node_manager_port else "worker"): w
                                        for p, w in nodes.items()}
    for node in (head, worker):  # both nodes parsed files and embedded batches
        assert nodes[node.node_manager_port]["files"] > 0 and nodes[node.node_manager_port]["texts"] > 0, nodes
    assert sum(w["texts"] for w in nodes.values()) == figures["two_nodes"]["texts"]
    assert current_name(ray_s.index_dir) is not None

    # 2. the same sources in one process, compared
    t = time.perf_counter()
    r1 = reindex(load_sources(sources).entries, one_s)
    figures["single_process"] = {"wall_s": round(time.perf_counter() - t, 1), "embed_s": r1.timings["embed"],
                                 "texts": r1.chunks_embedded + r1.sentences_embedded}
    assert r1.files_failed == 0
    figures["compared"] = _assert_same_index(ray_s, one_s)

    # 3. a day's changes; the worker node dies (SIGKILL, every process) after the first batches
    before_gen, before_search = current_name(ray_s.index_dir), search_state(ray_s, QUERIES)
    docs0, chunks0, vecs0, gens0 = _counts(ray_s)
    changed = change_resolutions(root, rows, every=5, tag="障害対応")
    proc = _ray_reindex(ray_s, sources, cluster)
    deadline = time.time() + 600
    while _counts(ray_s)[2] < vecs0 + 128:  # the first batch of the run is stored
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "no batch was stored in 10 minutes"
        time.sleep(0.2)
    t_kill = time.perf_counter()
    killed = cluster.kill_node(worker)
    rc, report, err = _finish(proc)
    figures["node_lost"] = {"changed_cases": changed, "processes_killed": killed, "exit": rc,
                            "after_kill_s": round(time.perf_counter() - t_kill, 1)}
    assert killed >= 3  # ray start, raylet, agents (and the worker process that held the model)
    docs, chunks, vecs, gens = _counts(ray_s)
    assert docs == docs0  # one live row per case, nothing duplicated (db_state checks per id too)
    if rc == 0:  # finished on the head alone
        figures["node_lost"]["outcome"] = "completed on the remaining node"
        assert report["docs_changed"] == changed and report["files_failed"] == 0
        assert current_name(ray_s.index_dir) != before_gen and gens == gens0 + 1
    else:  # failed cleanly: the previous generation still serves, nothing was published
        figures["node_lost"]["outcome"] = "failed cleanly"
        assert rc == 4 and "nothing new was published" in err, err
        assert current_name(ray_s.index_dir) == before_gen and gens == gens0
        assert_same_search(search_state(ray_s, QUERIES), before_search)
        rc, report, err = _finish(_ray_reindex(ray_s, sources, cluster))  # the next run finishes the job
        assert rc == 0, err
    alive = cluster.alive_nodes()
    assert len(alive) == 1 and alive[0].endswith(f":{head.node_manager_port}"), alive
    r2 = reindex(load_sources(sources).entries, one_s)
    assert r2.docs_changed == changed
    _assert_same_index(ray_s, one_s)  # the same vectors too: none lost, none stored twice

    # 4. one node: the same amount of new text, on the head alone
    more = change_resolutions(root, rows, every=5, tag="定期点検")
    t = time.perf_counter()
    rc, report, err = _finish(_ray_reindex(ray_s, sources, cluster))
    assert rc == 0, err
    assert set(_by_port(report)) == {head.node_manager_port}
    figures["one_node"] = {"changed_cases": more, "wall_s": round(time.perf_counter() - t, 1),
                           "embed_s": report["timings"]["embed"],
                           "texts": report["chunks_embedded"] + report["sentences_embedded"]}
    for k in ("two_nodes", "single_process", "one_node"):
        f = figures[k]
        f["texts_per_s"] = round(f["texts"] / f["embed_s"], 1) if f["embed_s"] else None
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.write_text(json.dumps(figures, ensure_ascii=False, indent=2))
    print(json.dumps(figures, ensure_ascii=False, indent=2))


def test_without_ray_nothing_imports_ray(tmp_path, model_dir):
    """The extra is optional: a plain re-index (and the API app) never import Ray."""
    from corpus import write_v1

    sources = write_v1(tmp_path / "corpus")
    s = _settings(tmp_path / "home", "", model_dir)
    code = ("import sys\n"
            f"sys.argv = ['hikitsugi', 'reindex', '--sources', {str(sources)!r}]\n"
            "import hikitsugi.api.app\n"
            "from hikitsugi.cli import main\n"
            "try:\n    main()\nexcept SystemExit as exc:\n    print('exit', exc.code)\n"
            "print('ray imported' if any(m == 'ray' or m.startswith('ray.') for m in sys.modules) else 'no ray')\n")
    r = subprocess.run([sys.executable, "-c", code], env=_env(s), cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.stdout.split()[-4:] == ["exit", "0", "no", "ray"], r.stdout + r.stderr
    assert current_name(s.index_dir) is not None


def test_ray_local_starts_and_stops_a_throwaway_cluster(tmp_path, model_dir):
    """`--ray local`: a one-machine cluster for trying it; gone when the run ends."""
    import psutil

    from corpus import write_v1

    sources = write_v1(tmp_path / "corpus")
    s = _settings(tmp_path / "home", "", model_dir)
    ray_tmp = Path(__import__("tempfile").mkdtemp(prefix="hk-rl-", dir="/tmp"))  # Ray's socket paths must be short
    # HOME: Ray keeps the token of a local cluster in ~/.ray; the test leaves the real home alone
    env = {**_env(s), "HIKITSUGI_RAY_LOCAL_CPUS": "1", "RAY_TMPDIR": str(ray_tmp), "HOME": str(tmp_path)}
    try:
        r = subprocess.run([sys.executable, "-m", "hikitsugi", "reindex", "--sources", str(sources), "--ray", "local",
                            "--json"], env=env, cwd=REPO, capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, r.stderr
        report = json.loads(r.stdout)
        assert report["docs_added"] == 9 and report["cluster"]["address"] == "local"
        (node,) = report["cluster"]["nodes"].values()
        assert node["files"] == 4 and node["texts"] == report["chunks_embedded"] + report["sentences_embedded"]
        leftovers = [p.pid for p in psutil.process_iter(["cmdline"]) if str(ray_tmp) in " ".join(p.info["cmdline"] or [])]
        assert leftovers == [], "the throw-away cluster left processes behind"
    finally:
        import shutil

        shutil.rmtree(ray_tmp, ignore_errors=True)
