"""Real HTTP receivers for the webhook tests: servers on 127.0.0.1 that record what they are sent
and answer as a test says (a status, after a delay, a redirect, a long body)."""
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Request:
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when it arrived

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Answer:
    status: int = 204
    delay: float = 0.0
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # socketserver's 5 drops a burst of new connections (retried 1 s later)


class Receiver:
    """`with Receiver(answer) as receiver:` a server whose `answer(request, n)` (n counts from 0)
    decides each answer; `receiver.requests` holds every request, answered or not."""

    def __init__(self, answer: Callable[[Request, int], Answer] | None = None, path: str = "/hook") -> None:
        self.answer = answer or (lambda request, n: Answer())
        self.path = path
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as receivers in the wild

            def do_POST(self) -> None:  # noqa: N802  (http.server's name)
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                request = Request({k.lower(): v for k, v in self.headers.items()}, body, time.monotonic())
                with receiver._lock:
                    n = len(receiver.requests)
                    receiver.requests.append(request)
                answer = receiver.answer(request, n)
                time.sleep(answer.delay)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(answer.body)))
                self.end_headers()
                try:
                    self.wfile.write(answer.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender reads the first 1 KB and hangs up

            def log_message(self, *args: Any) -> None:
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}{path}"

    def __enter__(self) -> "Receiver":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Request]:
        """The first `count` requests, once they came (AssertionError after `timeout`)."""
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            assert time.monotonic() < deadline, f"{len(self.requests)} of {count} requests within {timeout} s"
            time.sleep(0.01)
        return self.requests[:count]
