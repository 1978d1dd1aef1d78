"""A fault-injecting HTTP proxy for tests: a threaded loopback server in front of the moto S3 server.

Each request is matched against a rule table (method + a regular expression on the path); the first
rule with faults left answers with its fault instead of forwarding, and counts one down. Everything
else is forwarded unchanged (the Host header too, so SigV4 signatures stay as the client made them).

    with FaultProxy(endpoint, [Rule("PUT", r"/audio/", "slowdown", times=2)]) as proxy:
        Store(url, {"client_kwargs": {"endpoint_url": proxy.url}}) ...
        assert proxy.injected  # (method, path, action) of every fault answered

Bounded: every rule fires a finite number of times, one request meets at most ``max_in_a_row``
faults before an attempt goes through, and the proxy stops itself after ``max_s``.
"""

from __future__ import annotations

import http.client
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

# action -> (status, S3 error code, message); "drop" closes the connection before forwarding,
# "drop_after" forwards (the store applies the request) and then closes without an answer.
ERRORS = {
    "500": (500, "InternalError", "We encountered an internal error. Please try again."),
    "503": (503, "ServiceUnavailable", "Service is unable to handle request."),
    "slowdown": (503, "SlowDown", "Please reduce your request rate."),
    "403": (403, "AccessDenied", "Access Denied"),
}
ACTIONS = (*ERRORS, "drop", "drop_after")
TRANSIENT = ("500", "503", "slowdown", "drop", "drop_after")  # "403" is permanent
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "expect", "proxy-connection"}


@dataclass
class Rule:
    """Answer the first ``times`` requests with ``method`` whose path matches ``path`` with
    ``action`` (``method="*"`` matches any method)."""

    method: str
    path: str
    action: str
    times: int = 1
    fired: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown action {self.action!r}; known: {', '.join(ACTIONS)}")
        if self.times < 1:
            raise ValueError(f"times must be at least 1, got {self.times}")

    def matches(self, method: str, path: str) -> bool:
        return (
            self.fired < self.times
            and self.method in ("*", method)
            and re.search(self.path, path) is not None
        )


class FaultProxy:
    """The proxy server; a context manager that starts it on a free loopback port."""

    def __init__(
        self, upstream: str, rules: list[Rule], max_s: float = 300.0, max_in_a_row: int = 1
    ) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.rules = rules
        self.max_s = max_s
        # Faults one request meets in a row before one attempt goes through: keeps each request's
        # backoff short and spreads the faults over many requests.
        self.max_in_a_row = max_in_a_row
        self._streak: dict[tuple[str, str], int] = {}
        self.injected: list[tuple[str, str, str]] = []
        self.forwarded: list[tuple[str, str, int]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._timer = threading.Timer(max_s, self.stop)
        self._timer.daemon = True

    def __enter__(self) -> FaultProxy:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._timer.cancel()
        self._server.shutdown()
        self._server.server_close()

    def fault_for(self, method: str, path: str) -> str | None:
        key = (method, path)
        with self._lock:
            rule = next((r for r in self.rules if r.matches(method, path)), None)
            if rule is None or (
                rule.action in TRANSIENT and self._streak.get(key, 0) >= self.max_in_a_row
            ):
                self._streak[key] = 0
                return None
            rule.fired += 1
            self._streak[key] = self._streak.get(key, 0) + 1
            self.injected.append((method, path, rule.action))
            return rule.action

    def count(self, action: str | None = None) -> int:
        """Faults injected (of ``action``, when given)."""
        return sum(1 for *_, a in self.injected if action in (None, a))


def _error_body(code: str, message: str, path: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<Resource>{path}</Resource><RequestId>fault-proxy</RequestId></Error>"
    ).encode()


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as botocore's connection pool expects

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        # trailers (aws-chunked checksums travel here) up to the blank line
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _handle(self) -> None:
            body = self._read_body()
            action = proxy.fault_for(self.command, self.path)
            if action == "drop":
                self.close_connection = True
                return
            if action in ERRORS:
                status, code, message = ERRORS[action]
                payload = _error_body(code, message, self.path)
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)
                return
            status, headers, data = self._forward(body)
            proxy.forwarded.append((self.command, self.path, status))
            if action == "drop_after":
                self.close_connection = True
                return
            self.send_response(status)
            for key, value in headers:
                if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                    self.send_header(key, value)
            # A HEAD answer keeps the object's length and carries no body.
            length = dict((k.lower(), v) for k, v in headers).get("content-length")
            self.send_header("Content-Length", length if self.command == "HEAD" else str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
            conn = http.client.HTTPConnection(*proxy.upstream, timeout=60)
            try:
                conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for key, value in self.headers.items():
                    if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                        conn.putheader(key, value)
                if body or self.command in ("PUT", "POST"):
                    conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(body or None)
                resp = conn.getresponse()
                return resp.status, resp.getheaders(), resp.read()
            finally:
                conn.close()

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

    return Handler


def wait_for(predicate, timeout_s: float = 60.0, interval_s: float = 0.1) -> bool:
    """Poll ``predicate`` until it is true or ``timeout_s`` passes; returns its last value."""
    deadline = time.monotonic() + timeout_s
    while not (ok := bool(predicate())) and time.monotonic() < deadline:
        time.sleep(interval_s)
    return ok
