"""Request hardening: a body size limit (ASGI middleware) and a per-key rate limit.

The body limit runs before FastAPI parses anything, so a 10 MB JSON never reaches the
parser: a declared ``Content-Length`` over the limit is refused at once, and a chunked
body is read up to the limit and refused as soon as it passes it.

The rate limit is an in-memory token bucket per key (per key *and* user for tokens, so
one host tool's users do not share one bucket). In-memory is enough for one server
process; several processes behind a balancer each apply it separately.
"""

from __future__ import annotations

import json
import threading
import time


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


class RateLimiter:
    """Token buckets: ``allow(key)`` returns 0 when the request may go, else seconds to wait."""

    def __init__(self, per_s: float, burst: int) -> None:
        self.per_s, self.burst = per_s, max(1, burst)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> float:
        if self.per_s <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.per_s)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                if len(self._buckets) > 100_000:  # forget idle keys rather than grow without end
                    self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 60}
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.per_s


_limiters: dict[tuple[float, int], RateLimiter] = {}


def limiter(per_s: float, burst: int) -> RateLimiter:
    """One limiter per configuration, shared by every request of the process."""
    key = (per_s, burst)
    if key not in _limiters:
        _limiters[key] = RateLimiter(per_s, burst)
    return _limiters[key]
