"""A reverse proxy on 127.0.0.1 that injects platform faults in front of a real HTTP server.

The same faults for every adapter: answer 429 with Retry-After or a 5xx without forwarding,
or forward and then stall (the platform has the post, the client times out). Everything else
passes through untouched, so the adapter talks the platform's real protocol end to end.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import requests
from werkzeug.wrappers import Request, Response

from tests.support.http_server import serving

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "content-encoding",
    "content-length",
    "host",
}


@dataclass(frozen=True)
class Fault:
    """What to do to the next request whose method and path match."""

    method: str
    path_contains: str
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    #: Forward first, then hold the answer this long (longer than the client's timeout).
    stall_seconds: float = 0.0


class FaultProxy:
    """WSGI app forwarding to `upstream`, applying queued faults one request at a time."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self.forwarded: list[tuple[str, str]] = []
        self._session = requests.Session()

    def inject(self, fault: Fault) -> None:
        """Queue a fault for the next matching request."""
        with self._lock:
            self._faults.append(fault)

    def _take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.method == method and fault.path_contains in path:
                    self._faults.remove(fault)
                    return fault
        return None

    def __call__(self, environ: dict[str, object], start_response: object) -> Iterator[bytes]:
        request = Request(environ)  # type: ignore[arg-type]
        fault = self._take(request.method, request.path)
        if fault is not None and fault.status is not None:
            response = Response(
                fault.body,
                status=fault.status,
                headers=fault.headers,
                content_type="application/json",
            )
            return response(environ, start_response)  # type: ignore[arg-type]
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        upstream = self._session.request(
            request.method,
            self.upstream + request.full_path.rstrip("?"),
            headers=headers,
            data=request.get_data(),
            allow_redirects=False,
            timeout=30,
        )
        with self._lock:
            self.forwarded.append((request.method, request.path))
        if fault is not None and fault.stall_seconds:
            time.sleep(fault.stall_seconds)
        response = Response(
            upstream.content,
            status=upstream.status_code,
            headers=[(k, v) for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP],
        )
        return response(environ, start_response)  # type: ignore[arg-type]

    def close(self) -> None:
        """Close the upstream connections."""
        self._session.close()


@contextmanager
def fault_proxy(upstream: str) -> Iterator[tuple[str, FaultProxy]]:
    """Run a FaultProxy in front of `upstream`; yield (its URL, the proxy)."""
    proxy = FaultProxy(upstream)
    try:
        with serving(proxy) as url:
            yield url, proxy
    finally:
        proxy.close()
