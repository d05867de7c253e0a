"""Request hardening: a body size limit (ASGI middleware) and a per-key rate limit.

The body limit runs before FastAPI parses anything, so a 10 MB JSON never reaches the
parser: a declared ``Content-Length`` over the limit is refused at once, and a chunked
body is read up to the limit and refused as soon as it passes it.

The rate limit is a token bucket per key (per key *and* user for tokens, so one host
tool's users do not share one bucket); failed authentications get their own bucket per
client address. Both go through the small :class:`Limiter` interface (``take(key)`` → 0 or
seconds to wait; ``wait(key)`` the same without spending) with two backends:

* :class:`RateLimiter` — in memory, for one server process (and SQLite homes);
* :class:`DatabaseRateLimiter` — one row per bucket in ``rate_limit_buckets``, updated by a
  single ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` on the database's own clock, so
  every API replica on the database draws from the same bucket: the limit holds for a key
  whichever replica its requests reach, and no replica's clock matters. The row lock makes
  concurrent requests of one key take turns; other keys are not blocked. One round trip
  per request (0.24 ms median on a local PostgreSQL, 4 ms on SQLite; docs/benchmarks.md).

:func:`limiter_for` picks the backend from the settings (``rate_limit_backend``:
``auto`` = the database unless it is SQLite).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Protocol

from sqlalchemy import text

from hikitsugi.config import Settings
from hikitsugi.storage.database import engine_for


class BodySizeLimit:
    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or self.max_bytes <= 0:
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                too_big = False
            if too_big:
                await self._refuse(send)
                return
            await self.app(scope, receive, send)
            return
        # no length declared (chunked): buffer up to the limit, then replay
        messages, total = [], 0
        while True:
            msg = await receive()
            messages.append(msg)
            if msg["type"] != "http.request":
                break
            total += len(msg.get("body", b""))
            if total > self.max_bytes:
                await self._refuse(send)
                return
            if not msg.get("more_body"):
                break

        async def replay():
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send) -> None:
        body = json.dumps({"detail": f"request body larger than {self.max_bytes} bytes"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


class Limiter(Protocol):
    """What the API needs from a rate limiter; the backend is :func:`limiter`'s choice.

    Two uses today: requests per key (``requests``) and failed authentications per client
    address (``auth-failures``). A backend shared by several API processes (a table in
    the shared database) only has to provide these two methods."""

    def take(self, key: str) -> float:
        """Spend one token of ``key``'s bucket: 0.0 when allowed, else seconds until it would be."""

    def wait(self, key: str) -> float:
        """Seconds until ``take(key)`` would be allowed (0.0 = now), spending nothing."""


class RateLimiter:
    """In-memory token buckets (one process): ``per_s`` tokens a second, at most ``burst``."""

    def __init__(self, per_s: float, burst: int) -> None:
        self.per_s, self.burst = per_s, max(1, burst)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def _level(self, key: str, now: float) -> float:
        tokens, last = self._buckets.get(key, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - last) * self.per_s)

    def take(self, key: str) -> float:
        if self.per_s <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            tokens = self._level(key, now)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                if len(self._buckets) > 100_000:  # forget idle keys rather than grow without end
                    self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 60}
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.per_s

    def wait(self, key: str) -> float:
        if self.per_s <= 0:
            return 0.0
        with self._lock:
            tokens = self._level(key, time.monotonic())
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.per_s


# tokens after refilling at the database's clock; b = the stored bucket, excluded = this request
_REFILL = "{least}(:burst, b.tokens + {greatest}(0, excluded.at - b.at) * :rate)"
_UPSERT = """
INSERT INTO rate_limit_buckets AS b (bucket, tokens, at, allowed)
VALUES (:bucket, :burst - 1.0, {now}, {true})
ON CONFLICT (bucket) DO UPDATE SET
  tokens = CASE WHEN {refill} >= 1 THEN {refill} - 1.0 ELSE {refill} END,
  allowed = ({refill} >= 1),
  at = excluded.at
RETURNING allowed, tokens
"""
_LEVEL = "SELECT {least}(:burst, b.tokens + {greatest}(0, {now} - b.at) * :rate) FROM rate_limit_buckets AS b " \
         "WHERE b.bucket = :bucket"
_DIALECTS = {
    "postgresql": {"least": "LEAST", "greatest": "GREATEST", "now": "EXTRACT(EPOCH FROM clock_timestamp())",
                   "true": "true"},
    "sqlite": {"least": "MIN", "greatest": "MAX", "now": "((julianday('now') - 2440587.5) * 86400.0)", "true": "1"},
}


class DatabaseRateLimiter:
    """Token buckets in the database, shared by every process that uses it."""

    def __init__(self, db_url: str, per_s: float, burst: int, scope: str = "api") -> None:
        self.per_s, self.burst, self.scope = per_s, max(1, burst), scope
        self.engine = engine_for(db_url)
        words = _DIALECTS.get(self.engine.dialect.name)
        if words is None:
            raise ValueError(f"rate limits in the database need PostgreSQL or SQLite, not {self.engine.dialect.name}")
        refill = _REFILL.format(**words)
        self._sql = text(_UPSERT.format(refill=refill, **words))
        self._level = text(_LEVEL.format(**words))

    def _params(self, key: str) -> dict:
        return {"bucket": f"{self.scope}:{key}"[:256], "burst": float(self.burst), "rate": float(self.per_s)}

    def take(self, key: str) -> float:
        if self.per_s <= 0:
            return 0.0
        with self.engine.begin() as conn:
            allowed, tokens = conn.execute(self._sql, self._params(key)).one()
        return 0.0 if allowed else (1.0 - float(tokens)) / self.per_s

    def wait(self, key: str) -> float:
        if self.per_s <= 0:
            return 0.0
        with self.engine.connect() as conn:
            tokens = conn.execute(self._level, self._params(key)).scalar()
        return 0.0 if tokens is None or float(tokens) >= 1.0 else (1.0 - float(tokens)) / self.per_s


_limiters: dict[tuple, Limiter] = {}


def limiter(per_s: float, burst: int, db_url: str | None = None, scope: str = "api") -> Limiter:
    """One limiter per purpose and configuration, shared by every request of the process: in
    memory, or in the database at ``db_url`` (then shared by every replica too)."""
    key = (per_s, burst, db_url, scope)
    if key not in _limiters:
        _limiters[key] = RateLimiter(per_s, burst) if db_url is None else DatabaseRateLimiter(db_url, per_s, burst,
                                                                                                scope)
    return _limiters[key]


def shared_limits(settings: Settings) -> bool:
    """Do rate limits live in the database (``rate_limit_backend``)?"""
    backend = settings.rate_limit_backend
    if backend not in ("auto", "memory", "database"):
        raise ValueError(f"rate_limit_backend must be auto, memory or database, not '{backend}'")
    return backend == "database" or (backend == "auto" and not settings.db_url.startswith("sqlite"))


def limiter_for(settings: Settings, per_s: float | None = None, burst: int | None = None,
                scope: str = "api") -> Limiter:
    """The limiter the settings call for (default: the per-key API limit)."""
    return limiter(settings.rate_limit_per_s if per_s is None else per_s,
                   settings.rate_limit_burst if burst is None else burst,
                   settings.db_url if shared_limits(settings) else None, scope)
