"""Load test: 20 concurrent agents against a real ``hikitsugi serve`` on loopback.

    python -m bench.loadtest [--home DIR] [--users 20] [--run-time 60s] [--json]

Creates one agent key per simulated user in the home (some assigned to customers, so
both the full and the masked paths are exercised), starts ``hikitsugi serve`` on
127.0.0.1, runs locust headless for the given time, stops the server, and prints
requests, errors and p50/p95/p99 latency. Without ``--home`` the sample data is ingested
into a throw-away home first. Exit code 1 when any request failed.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prepare(home: Path, users: int) -> list[str]:
    os.environ["HIKITSUGI_HOME"] = str(home)
    from hikitsugi.access.principals import assign, create_key
    from hikitsugi.config import get_settings
    from hikitsugi.storage.database import session_for

    settings = get_settings()
    if not (settings.index_dir / "CURRENT").exists():
        from hikitsugi.index.update import ingest_paths

        ingest_paths([REPO / "data" / "samples"], settings)
    session = session_for(settings.db_url)
    try:
        keys = []
        for i in range(users):
            keys.append(create_key(session, f"load{i:02d}", "agent", "loadtest")[1])
            if i % 2 == 0:
                assign(session, f"load{i:02d}", f"C{(i % 24) + 1:03d}", by="loadtest")
        return keys
    finally:
        session.close()


def run(home: Path, users: int, run_time: str, out_dir: Path) -> dict:
    keys = _prepare(home, users)
    keys_file = out_dir / "keys.json"
    keys_file.write_text(json.dumps(keys))
    port = _free_port()
    env = {**os.environ, "HIKITSUGI_HOME": str(home), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    log = open(out_dir / "server.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "hikitsugi", "serve", "--host", "127.0.0.1", "--port", str(port)],
                              env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline or server.poll() is not None:
                raise RuntimeError("server did not start; see " + str(out_dir / "server.log"))
            time.sleep(0.5)
        httpx.post(base + "/search", json={"query": "紙詰まり"}, headers={"X-API-Key": keys[0]}, timeout=60)  # warm
        lenv = {**env, "HIKITSUGI_LOAD_KEYS": str(keys_file),
                "HIKITSUGI_LOAD_QUERIES": str(REPO / "eval" / "datasets" / "support-ja" / "queries.jsonl")}
        cmd = [sys.executable, "-m", "locust", "-f", str(REPO / "bench" / "locustfile.py"), "--headless",
               "--users", str(users), "--spawn-rate", str(users), "--run-time", run_time, "--host", base,
               "--csv", str(out_dir / "locust"), "--only-summary", "--stop-timeout", "10"]
        subprocess.run(cmd, env=lenv, cwd=REPO, check=False, timeout=3600)
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    rows = list(csv.DictReader(open(out_dir / "locust_stats.csv", encoding="utf-8")))
    result = {}
    for r in rows:
        result[r["Name"]] = {
            "requests": int(r["Request Count"]), "failures": int(r["Failure Count"]),
            "rps": round(float(r["Requests/s"]), 1), "p50_ms": float(r["50%"]), "p95_ms": float(r["95%"]),
            "p99_ms": float(r["99%"]), "max_ms": round(float(r["Max Response Time"]), 1),
        }
    errors = (out_dir / "locust_failures.csv").read_text(encoding="utf-8").splitlines()[1:]
    return {"users": users, "run_time": run_time, "stats": result, "failures": errors}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--home", type=Path, help="An ingested HIKITSUGI_HOME (default: ingest the samples afresh).")
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--run-time", default="60s")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="hikitsugi-load-") as tmp:
        home = args.home or Path(tmp) / "home"
        result = run(home, args.users, args.run_time, Path(tmp))
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        print(f"{args.users} users, {args.run_time}")
        for name, s in result["stats"].items():
            print(f"{name:<22} requests {s['requests']:>6}  failures {s['failures']:>3}  {s['rps']:>6} req/s  "
                  f"p50 {s['p50_ms']:.0f} ms  p95 {s['p95_ms']:.0f} ms  p99 {s['p99_ms']:.0f} ms")
        for line in result["failures"]:
            print("failure:", line)
    sys.exit(1 if any(s["failures"] for s in result["stats"].values()) else 0)


if __name__ == "__main__":
    main()
