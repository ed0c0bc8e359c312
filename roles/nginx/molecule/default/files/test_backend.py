#!/usr/bin/env python3
"""Test backend for the nginx role's scenario: python3 stdlib only.

Usage: lvd-test-backend PORT. Listens on 127.0.0.1:PORT and answers every
GET/POST/DELETE with a text body naming itself and what it saw of the connection,
so the tests can tell which backend served a request and whether nginx
reused an upstream keep-alive connection. A request carrying
"Upgrade: websocket" gets "101 Switching Protocols", as a WebSocket server
would answer, and the connection is closed shortly after.
"""

import base64
import hashlib
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
PORT = int(sys.argv[1])


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # keep the journal quiet
        pass

    def _upgrade(self):
        key = self.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1((key + WEBSOCKET_GUID).encode()).digest()).decode()
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.send_header("X-Backend", str(PORT))
        self.end_headers()
        self.wfile.flush()
        time.sleep(0.5)
        self.close_connection = True

    def _answer(self):
        if self.headers.get("Upgrade", "").lower() == "websocket":
            self._upgrade()
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        lines = [
            f"backend={PORT}",
            f"peer={self.client_address[1]}",
            f"path={self.path}",
            f"version={self.request_version}",
            f"connection={self.headers.get('Connection', '-')}",
            f"forwarded_proto={self.headers.get('X-Forwarded-Proto', '-')}",
        ]
        # Long enough for gzip_min_length: the tests check compression.
        lines.append("padding=" + "dashboard " * 60)
        body = ("\n".join(lines) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Backend", str(PORT))
        self.end_headers()
        self.wfile.write(body)

    def do_TRACE(self):
        """As the app answers a method no route serves: 405 naming the resource's methods."""
        self.send_response(405)
        self.send_header("Allow", "GET, POST, DELETE")
        self.send_header("Content-Length", "0")
        self.send_header("X-Backend", str(PORT))
        self.send_header("X-Method", self.command)
        self.end_headers()

    do_GET = _answer
    do_POST = _answer
    do_PUT = _answer
    do_PATCH = _answer
    do_DELETE = _answer
    do_OPTIONS = _answer


if __name__ == "__main__":
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
