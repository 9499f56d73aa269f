#!/usr/bin/python3
"""Turnout's local mail sink: a real SMTP server (aiosmtpd, AUTH required) that keeps
every message it accepts and serves them over a small HTTP API, so people and tests can
read the code a voter was sent.

    /usr/bin/python3 scripts/mailsink.py --smtp-port 2525 --http-port 8025 \
        --user turnout --password sink-secret

HTTP API (JSON):
    GET /messages/latest?to=ADDR   newest message to ADDR (404 if none)
    GET /messages?to=ADDR&limit=N  newest first, at most N (default 20, max 500)
    GET /messages/count            how many messages were accepted
    GET /                          a plain HTML list of the newest messages

It prints one line "READY smtp=PORT http=PORT" when both listeners are up.
Debian's python3-aiosmtpd is seen by /usr/bin/python3 (not by other Pythons on PATH).
"""
import argparse
import collections
import email
import email.policy
import html
import json
import logging
import warnings
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

MAX_KEPT = 200_000


class Mailbox:
    def __init__(self):
        self.lock = threading.Lock()
        self.messages = collections.deque(maxlen=MAX_KEPT)
        self.by_rcpt = collections.defaultdict(lambda: collections.deque(maxlen=50))
        self.total = 0

    def add(self, msg):
        with self.lock:
            self.messages.append(msg)
            self.total += 1
            for rcpt in msg["to"]:
                self.by_rcpt[rcpt.lower()].append(msg)

    def for_rcpt(self, rcpt, limit):
        with self.lock:
            return list(reversed(self.by_rcpt.get(rcpt.lower(), [])))[:limit]

    def newest(self, limit):
        with self.lock:
            return list(reversed(self.messages))[:limit]


class Handler:
    def __init__(self, box, delay):
        self.box = box
        self.delay = delay

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            import asyncio
            await asyncio.sleep(self.delay)
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        part = parsed.get_body(preferencelist=("plain",))
        body = part.get_content() if part is not None else ""
        self.box.add({
            "from": envelope.mail_from,
            "to": list(envelope.rcpt_tos),
            "subject": str(parsed.get("Subject", "")),
            "body": body,
            "received_at": time.time(),
            "auth_user": session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None,
        })
        return "250 OK message accepted"


class Authenticator:
    def __init__(self, user, password):
        self.user = user.encode()
        self.password = password.encode()

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == self.user and auth_data.password == self.password
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


def http_handler(box):
    class Api(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def send(self, status, payload, content_type="application/json"):
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            url = urlparse(self.path)
            q = parse_qs(url.query)
            to = q.get("to", [""])[0]
            try:
                limit = max(1, min(500, int(q.get("limit", ["20"])[0])))
            except ValueError:
                return self.send(400, {"error": "limit must be a number"})
            if url.path == "/messages/count":
                return self.send(200, {"count": box.total})
            if url.path == "/messages/latest":
                if not to:
                    return self.send(400, {"error": "give ?to=ADDRESS"})
                found = box.for_rcpt(to, 1)
                return self.send(200, found[0]) if found else self.send(404, {"error": f"no message to {to}"})
            if url.path == "/messages":
                return self.send(200, box.for_rcpt(to, limit) if to else box.newest(limit))
            if url.path == "/":
                rows = "".join(
                    f"<tr><td>{html.escape(', '.join(m['to']))}</td><td>{html.escape(m['from'])}</td>"
                    f"<td>{html.escape(m['subject'])}</td><td><pre>{html.escape(m['body'])}</pre></td></tr>"
                    for m in box.newest(50)
                )
                page = f"<!doctype html><title>Turnout mail sink</title><h1>Mail sink ({box.total} messages)</h1><table border=1 cellpadding=4><tr><th>To</th><th>From</th><th>Subject</th><th>Body</th></tr>{rows}</table>"
                return self.send(200, page.encode(), "text/html; charset=utf-8")
            return self.send(404, {"error": "unknown path"})

    return Api


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--smtp-port", type=int, required=True)
    p.add_argument("--http-port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--delay", type=float, default=0.0, help="seconds to wait before accepting each message")
    args = p.parse_args()

    # Loopback only: AUTH without TLS is intended here.
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    box = Mailbox()
    controller = Controller(
        Handler(box, args.delay),
        hostname=args.host,
        port=args.smtp_port,
        authenticator=Authenticator(args.user, args.password),
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    httpd = ThreadingHTTPServer((args.host, args.http_port), http_handler(box))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    print(f"READY smtp={args.smtp_port} http={args.http_port}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.shutdown()
        controller.stop()


if __name__ == "__main__":
    sys.exit(main())
