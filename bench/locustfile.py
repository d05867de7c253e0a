"""Locust user for the load test (run by bench/loadtest.py): a first-line agent typing
problems from the labeled support queries, sometimes with a customer in context, and
opening one of the results now and then. Each simulated user has its own API key."""

from __future__ import annotations

import itertools
import json
import os
import random
from pathlib import Path

from locust import HttpUser, between, task

QUERIES = [json.loads(line)["text"] for line in
           Path(os.environ["HIKITSUGI_LOAD_QUERIES"]).read_text(encoding="utf-8").splitlines() if line.strip()]
KEYS = itertools.cycle(json.loads(Path(os.environ["HIKITSUGI_LOAD_KEYS"]).read_text()))
CUSTOMERS = ["C001", "C002", "C004", "C010", "C015", None, None, None]


class Agent(HttpUser):
    wait_time = between(0.5, 1.5)

    def on_start(self) -> None:
        self.client.headers["X-API-Key"] = next(KEYS)
        self.rng = random.Random()

    @task(5)
    def search(self) -> None:
        body = {"query": self.rng.choice(QUERIES), "k": 5}
        customer = self.rng.choice(CUSTOMERS)
        if customer:
            body["customer"] = customer
        with self.client.post("/search", json=body, name="POST /search", catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"HTTP {r.status_code}")
                return
            results = r.json().get("results") or []
            self.last = [x["source_id"] for x in results]

    @task(1)
    def document(self) -> None:
        ids = getattr(self, "last", None) or ["C001"]
        sid = self.rng.choice(ids)
        with self.client.get(f"/documents/{sid}", name="GET /documents/{id}", catch_response=True) as r:
            if r.status_code not in (200, 404):  # 404: a note of a customer this agent is not assigned to (alike a missing id)
                r.failure(f"HTTP {r.status_code}")
            else:
                r.success()
