"""A webhook receiver on 127.0.0.1 for the tests: it answers from a script (status codes,
Retry-After, a hang) and keeps every request it got."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Answer:
    status: int = 200
    retry_after: str | None = None
    hang: float = 0.0  # seconds to wait before answering (a timeout for the sender)


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # when the request arrived (before any hang)
    status: int  # what the receiver answered


@dataclass
class Receiver:
    url: str
    script: deque[Answer] = field(default_factory=deque)
    received: list[Received] = field(default_factory=list)
    arrivals: list[str] = field(default_factory=list)  # webhook-ids, as requests arrive
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, *answers: Answer) -> None:
        with self.lock:
            self.script.extend(answers)

    def delivered(self) -> list[Received]:
        """The requests answered with a 2xx."""
        with self.lock:
            return [r for r in self.received if 200 <= r.status < 300]


@contextmanager
def receiving(path: str = "/hook") -> Iterator[Receiver]:
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            receiver = state["r"]
            arrived = time.monotonic()
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            with receiver.lock:
                answer = receiver.script.popleft() if receiver.script else Answer()
                receiver.arrivals.append(self.headers.get("webhook-id") or "")
            if answer.hang:
                time.sleep(answer.hang)
            with receiver.lock:
                receiver.received.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()},
                             body, arrived, answer.status)
                )  # fmt: skip
            self.send_response(answer.status)
            if answer.retry_after:
                self.send_header("Retry-After", answer.retry_after)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state["r"] = Receiver(f"http://127.0.0.1:{server.server_port}{path}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["r"]
    finally:
        server.shutdown()
        server.server_close()
