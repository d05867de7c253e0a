"""Request hardening: a body size limit (ASGI middleware) and a per-key rate limit.

The body limit runs before FastAPI parses anything, so a 10 MB JSON never reaches the
parser: a declared ``Content-Length`` over the limit is refused at once, and a chunked
body is read up to the limit and refused as soon as it passes it.

The rate limit is a token bucket per key (per key *and* user for tokens, so one host
tool's users do not share one bucket); failed authentications get their own bucket per
client address. Both go through the small :class:`Limiter` interface; the backend here
is in memory, which is enough for one server process (several processes behind a
balancer each apply it separately until a shared backend replaces :func:`limiter`).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Protocol


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

    allow = take  # the name callers used before the Limiter interface


_limiters: dict[tuple[str, float, int], RateLimiter] = {}


def limiter(per_s: float, burst: int, name: str = "requests") -> Limiter:
    """One limiter per purpose and configuration, shared by every request of the process."""
    key = (name, per_s, burst)
    if key not in _limiters:
        _limiters[key] = RateLimiter(per_s, burst)
    return _limiters[key]
