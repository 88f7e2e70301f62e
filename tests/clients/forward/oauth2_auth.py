"""An endpoint that answers the way oauth2-proxy's `/oauth2/auth` does: 202 with
`X-Auth-Request-User` and `X-Auth-Request-Groups` for a known `_oauth2_proxy` cookie, 401
otherwise. `POST /control` (JSON) sets its sessions, a delay, or a forced status; `GET /state`
tells how often it was asked and what it last received.

Usage: oauth2_auth.py PORT
"""

import json
import sys
import threading
import time
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATE = {"sessions": {}, "delay": 0.0, "status": None, "count": 0, "cookie": None, "authorization": None}
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/state":
            with LOCK:
                body = json.dumps(STATE).encode()
            return self.answer(200, {"Content-Type": "application/json"}, body)
        if self.path != "/oauth2/auth":
            return self.answer(404)
        with LOCK:
            STATE["count"] += 1
            STATE["cookie"] = self.headers.get("Cookie")
            STATE["authorization"] = self.headers.get("Authorization")
            delay, status, sessions = STATE["delay"], STATE["status"], dict(STATE["sessions"])
        time.sleep(delay)
        if status:
            return self.answer(status)
        cookie = SimpleCookie(self.headers.get("Cookie", ""))
        token = cookie.get("_oauth2_proxy")
        session = sessions.get(token.value) if token else None
        if session is None:
            return self.answer(401)
        return self.answer(
            202,
            {"X-Auth-Request-User": session["user"], "X-Auth-Request-Groups": ",".join(session["groups"])},
        )

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        change = json.loads(self.rfile.read(length))
        with LOCK:
            STATE.update(change)
        self.answer(204)

    def answer(self, status, headers=None, body=b""):
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.daemon_threads = True
    server.serve_forever()
