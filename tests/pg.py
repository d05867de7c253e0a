"""A real, throw-away PostgreSQL server for the tests (imported by test modules).

``pg_server`` (session): finds Debian's PostgreSQL binaries (``/usr/lib/postgresql/<ver>/bin``)
or installs them with ``apt-get install -y postgresql`` when running as root (skips with
the reason otherwise), creates a cluster with ``initdb`` in a temporary directory — as
the ``postgres`` user when we are root, since initdb refuses to run as root — starts it
on a free port on 127.0.0.1 with its unix socket in that directory, and stops and removes
it at the end of the session. ``server.new_database()`` returns the SQLAlchemy URL
(``postgresql+psycopg://…``) of a new, empty database.

``db_url`` (function, parametrized ``sqlite`` / ``postgresql``): ``""`` for SQLite (the
default database under the home) or the URL of a fresh PostgreSQL database. A test that
takes it runs once per backend.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest


def _find_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: [int(x) for x in Path(p).parts[-3].split(".") if x.isdigit()])
    if found:
        return Path(found[-1]).parent
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return Path(initdb).resolve().parent
    return None


def _install() -> str | None:
    """Install Debian's postgresql package; returns why it could not, or None."""
    if os.geteuid() != 0:
        return "PostgreSQL binaries (initdb, pg_ctl) not found and not running as root to apt-get install them"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "postgresql"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200)
    if r.returncode != 0:  # stale or missing package lists
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, text=True, timeout=1200)
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200)
    if r.returncode != 0:
        return f"apt-get install postgresql failed: {r.stderr.strip()[-500:]}"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PgServer:
    port: int
    base: Path

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@pytest.fixture(scope="session")
def pg_server():
    bindir = _find_bindir()
    if bindir is None:
        why = _install()
        bindir = _find_bindir()
        if bindir is None:
            pytest.skip(why or "PostgreSQL binaries not found after installing postgresql")
    as_root = os.geteuid() == 0
    base = Path(tempfile.mkdtemp(prefix="hikitsugi-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    prefix: list[str] = []
    if as_root:
        pw = pwd.getpwnam("postgres")
        for p in (base, sock):
            os.chown(p, pw.pw_uid, pw.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    subprocess.run(prefix + [str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                             "-E", "UTF8", "--no-locale", "--no-sync"],
                   check=True, capture_output=True, text=True, timeout=300)
    opts = (f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=200")
    start = subprocess.run(prefix + [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "server.log"),
                                     "-w", "-t", "60", "-o", opts, "start"],
                           capture_output=True, text=True, timeout=120)
    if start.returncode != 0:
        log = (base / "server.log").read_text() if (base / "server.log").exists() else ""
        shutil.rmtree(base, ignore_errors=True)
        raise RuntimeError(f"pg_ctl start failed: {start.stdout}{start.stderr}{log}")
    server = PgServer(port, base)
    deadline = time.time() + 30
    while True:  # -w already waited; make sure TCP answers too
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)
    yield server
    subprocess.run(prefix + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                   capture_output=True, text=True, timeout=120)
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request) -> str:
    """'' (SQLite under the home) or a fresh PostgreSQL database's URL."""
    if request.param == "sqlite":
        return ""
    return request.getfixturevalue("pg_server").new_database()
