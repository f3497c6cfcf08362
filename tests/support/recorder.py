"""An in-process HTTP server on 127.0.0.1 that answers 200 and keeps every request it got:
a Pushgateway or an OTLP receiver, as far as the engine can tell."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["Recorded", "recording_server"]


@dataclass
class Recorded:
    url: str
    #: (method, path, body) of each request, in order
    requests: list[tuple[str, str, bytes]] = field(default_factory=list)


@contextmanager
def recording_server() -> Iterator[Recorded]:
    recorded = Recorded("")

    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            recorded.requests.append((self.command, self.path, body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_PUT = do_POST = _record

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    recorded.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorded
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
