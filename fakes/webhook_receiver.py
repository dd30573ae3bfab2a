"""A Standard Webhooks receiver on a loopback port, for the kill test and the benchmark.

A threaded `http.server` (HTTP/1.1 keep-alive): each POST is verified with the reference
`standardwebhooks` package when a secret is given (a dev dependency), recorded with its
arrival time, and answered 204.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson


@dataclass
class Arrival:
    msg_id: str
    seq: int | None
    received_at: float  # time.time()
    change_at: str | None


@dataclass
class WebhookReceiver:
    secret: str | None = None
    arrivals: list[Arrival] = field(default_factory=list)
    rejected: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def seqs(self) -> list[int]:
        with self.lock:
            return [a.seq for a in self.arrivals if a.seq is not None]

    def _accept(self, body: bytes, headers: dict[str, str]) -> bool:
        if self.secret is not None:
            from standardwebhooks.webhooks import Webhook, WebhookVerificationError

            try:
                Webhook(self.secret).verify(body, headers, json_parse=False)
            except WebhookVerificationError:
                with self.lock:
                    self.rejected += 1
                return False
        payload: dict[str, Any] = orjson.loads(body)
        change = payload.get("data", {}).get("change") or {}
        arrival = Arrival(headers["webhook-id"], change.get("seq"), time.time(), change.get("at"))
        with self.lock:
            self.arrivals.append(arrival)
        return True


@contextmanager
def receiving(receiver: WebhookReceiver, host: str = "127.0.0.1") -> Iterator[WebhookReceiver]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            expected = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(expected)
            if len(body) < expected:  # the sender died mid-request (the kill test): no delivery
                self.close_connection = True
                return
            accepted = receiver._accept(body, {k.lower(): v for k, v in self.headers.items()})
            self.send_response(204 if accepted else 400)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            """The arrivals so far, as JSON (the benchmark reads them from its own process)."""
            with receiver.lock:
                body = orjson.dumps([vars(a) for a in receiver.arrivals])
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # a sender killed mid-request resets its connection: expected in the kill test

    server = Server((host, 0), Handler)
    receiver.url = f"http://{host}:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


def main() -> None:
    """`python -m fakes.webhook_receiver [--secret whsec_...]`: serve until killed; prints the URL."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--secret", default=None)
    args = parser.parse_args()
    with receiving(WebhookReceiver(secret=args.secret)) as receiver:
        print(receiver.url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            sys.stdin.read()  # until the parent closes our stdin (or kills us)


if __name__ == "__main__":
    main()
