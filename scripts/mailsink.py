#!/usr/bin/python3
"""Turnout's local mail sink: a real SMTP server (aiosmtpd, AUTH required) that keeps
every message it accepts, serves them over HTTP, and can behave like a throttling mail
provider, per sender account.

    /usr/bin/python3 scripts/mailsink.py --smtp-port 2525 --http-port 8025 \\
        --account elections-1:secret:rate=30:concurrency=2:daily=2000 \\
        --account elections-2:secret

An account is its AUTH login. Limits (all optional):
    rate=N         messages per minute (sliding 60 s window); beyond: 421 4.7.0
    concurrency=N  sessions at once (MAIL FROM to end of DATA); beyond: 432 4.3.2
    daily=N        messages per day; beyond: 554 5.2.0
    delay=S        wait S seconds before answering DATA (a slow or hanging provider)
Recipients whose address starts with "bounce" are refused with 550 5.1.1.

HTTP API (JSON):
    GET  /messages/latest?to=ADDR       newest message to ADDR (404 if none)
    GET  /messages?to=ADDR&limit=N      newest first, at most N (default 20, max 500)
    GET  /messages/count                how many messages were accepted
    GET  /messages/since?seq=S&limit=N  messages after sequence number S, oldest first (for pollers)
    GET  /accounts                      per account: limits, accepted times, refusals, peak sessions
    POST /accounts/NAME/block           answer 550 5.1.8 from now on (…/unblock undoes it)
    POST /accounts/NAME/delay?seconds=S set the DATA delay
    GET  /                              a plain HTML list of the newest messages

It prints "READY smtp=PORT http=PORT" when both listeners are up. Debian's
python3-aiosmtpd is seen by /usr/bin/python3 (not by other Pythons on PATH).
"""
import argparse
import asyncio
import collections
import itertools
import email
import email.policy
import html
import json
import logging
import ssl
import sys
import threading
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

MAX_KEPT = 200_000


class Account:
    def __init__(self, name, password, rate=None, concurrency=None, daily=None, delay=0.0):
        self.name, self.password = name, password
        self.rate, self.concurrency, self.daily, self.delay = rate, concurrency, daily, delay
        self.blocked = False
        self.active = 0
        self.peak = 0
        self.accepted = []  # unix times of accepted messages
        self.window = collections.deque()  # accepted times in the last 60 s
        self.refused = collections.Counter()

    def describe(self):
        return {
            "name": self.name, "rate": self.rate, "concurrency": self.concurrency, "daily": self.daily,
            "delay": self.delay, "blocked": self.blocked, "active": self.active, "peak_concurrency": self.peak,
            "accepted": list(self.accepted), "refused": dict(self.refused),
        }


def parse_account(spec):
    parts = spec.split(":")
    if len(parts) < 2:
        raise argparse.ArgumentTypeError("NAME:PASSWORD[:key=value...]")
    opts = {}
    for kv in parts[2:]:
        key, _, value = kv.partition("=")
        if key not in ("rate", "concurrency", "daily", "delay"):
            raise argparse.ArgumentTypeError(f"unknown limit {key!r}")
        opts[key] = float(value) if key == "delay" else int(value)
    return Account(parts[0], parts[1], **opts)


class Sink:
    def __init__(self, accounts):
        self.lock = threading.Lock()
        self.accounts = {a.name: a for a in accounts}
        self.messages = collections.deque(maxlen=MAX_KEPT)
        self.by_rcpt = collections.defaultdict(lambda: collections.deque(maxlen=50))
        self.total = 0

    def add(self, msg):
        with self.lock:
            self.total += 1
            msg["seq"] = self.total
            self.messages.append(msg)
            for rcpt in msg["to"]:
                self.by_rcpt[rcpt.lower()].append(msg)

    def for_rcpt(self, rcpt, limit):
        with self.lock:
            return list(reversed(self.by_rcpt.get(rcpt.lower(), [])))[:limit]

    def since(self, seq, limit):
        """Messages after sequence number `seq`, oldest first (for pollers)."""
        with self.lock:
            first = self.messages[0]["seq"] if self.messages else 1
            start = max(0, seq + 1 - first)
            return list(itertools.islice(self.messages, start, start + limit))

    def newest(self, limit):
        with self.lock:
            return list(reversed(self.messages))[:limit]


def account_of(session):
    data = getattr(session, "auth_data", None)
    return data.login.decode() if isinstance(data, LoginPassword) else None


def release(sink, session):
    """Ends the session's count toward its account's concurrency, once."""
    name = getattr(session, "turnout_counted", None)
    if name:
        session.turnout_counted = None
        with sink.lock:
            sink.accounts[name].active -= 1


class Handler:
    def __init__(self, sink):
        self.sink = sink

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        name = account_of(session)
        acct = self.sink.accounts.get(name)
        if acct is None:
            return "530 5.7.0 Authentication required"
        now = time.time()
        with self.sink.lock:
            while acct.window and acct.window[0] <= now - 60:
                acct.window.popleft()
            today = [t for t in acct.accepted if t > now - 86400] if acct.daily else []
            if acct.blocked:
                code = "550 5.1.8 Sender account blocked"
            elif acct.daily is not None and len(today) >= acct.daily:
                code = "554 5.2.0 Daily sending quota exceeded"
            elif acct.rate is not None and len(acct.window) >= acct.rate:
                code = "421 4.7.0 Rate limit exceeded, try again later"
            elif acct.concurrency is not None and acct.active >= acct.concurrency:
                code = "432 4.3.2 Too many concurrent sessions"
            else:
                code = None
                acct.active += 1
                acct.peak = max(acct.peak, acct.active)
                session.turnout_counted = name
            if code:
                acct.refused[code.split()[0] + " " + code.split()[1]] += 1
                return code
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower().startswith("bounce"):
            return "550 5.1.1 The email account that you tried to reach does not exist"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_RSET(self, server, session, envelope):
        release(self.sink, session)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        name = account_of(session)
        acct = self.sink.accounts[name]
        try:
            if acct.delay:
                await asyncio.sleep(acct.delay)
            # The client gave up while we were slow: like a real server, no message.
            if server.transport is None or server.transport.is_closing():
                return "451 4.4.2 Connection lost"
            parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
            part = parsed.get_body(preferencelist=("plain",))
            now = time.time()
            with self.sink.lock:
                acct.accepted.append(now)
                acct.window.append(now)
            self.sink.add({
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "subject": str(parsed.get("Subject", "")),
                "body": part.get_content() if part is not None else "",
                "received_at": now,
                "auth_user": name,
            })
            return "250 OK message accepted"
        finally:
            release(self.sink, session)


class SinkSMTP(SMTP):
    def __init__(self, handler, sink, **kwargs):
        super().__init__(handler, **kwargs)
        self.sink = sink

    def connection_lost(self, error):
        session = self.session
        super().connection_lost(error)
        release(self.sink, session)


class SinkController(Controller):
    def __init__(self, sink, *args, **kwargs):
        self.sink = sink
        super().__init__(*args, **kwargs)

    def factory(self):
        return SinkSMTP(self.handler, self.sink, **self.SMTP_kwargs)


class Authenticator:
    def __init__(self, sink):
        self.sink = sink

    def __call__(self, server, session, envelope, mechanism, auth_data):
        acct = self.sink.accounts.get(auth_data.login.decode()) if isinstance(auth_data, LoginPassword) else None
        ok = acct is not None and auth_data.password == acct.password.encode()
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


def http_handler(sink):
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

        def do_POST(self):
            url = urlparse(self.path)
            parts = url.path.strip("/").split("/")
            if len(parts) == 3 and parts[0] == "accounts" and parts[1] in sink.accounts:
                acct = sink.accounts[parts[1]]
                with sink.lock:
                    if parts[2] == "block":
                        acct.blocked = True
                    elif parts[2] == "unblock":
                        acct.blocked = False
                    elif parts[2] == "delay":
                        try:
                            acct.delay = float(parse_qs(url.query).get("seconds", ["0"])[0])
                        except ValueError:
                            return self.send(400, {"error": "seconds must be a number"})
                    else:
                        return self.send(404, {"error": "unknown action"})
                return self.send(200, acct.describe())
            return self.send(404, {"error": "unknown account or path"})

        def do_GET(self):
            url = urlparse(self.path)
            q = parse_qs(url.query)
            to = q.get("to", [""])[0]
            try:
                limit = max(1, min(500, int(q.get("limit", ["20"])[0])))
            except ValueError:
                return self.send(400, {"error": "limit must be a number"})
            if url.path == "/messages/count":
                return self.send(200, {"count": sink.total})
            if url.path == "/accounts":
                with sink.lock:
                    return self.send(200, [a.describe() for a in sink.accounts.values()])
            if url.path == "/messages/latest":
                if not to:
                    return self.send(400, {"error": "give ?to=ADDRESS"})
                found = sink.for_rcpt(to, 1)
                return self.send(200, found[0]) if found else self.send(404, {"error": f"no message to {to}"})
            if url.path == "/messages/since":
                try:
                    seq = int(q.get("seq", ["0"])[0])
                    batch = max(1, min(5000, int(q.get("limit", ["1000"])[0])))
                except ValueError:
                    return self.send(400, {"error": "seq and limit must be numbers"})
                return self.send(200, sink.since(seq, batch))
            if url.path == "/messages":
                return self.send(200, sink.for_rcpt(to, limit) if to else sink.newest(limit))
            if url.path == "/":
                rows = "".join(
                    f"<tr><td>{html.escape(', '.join(m['to']))}</td><td>{html.escape(m['from'])}</td>"
                    f"<td>{html.escape(m['subject'])}</td><td><pre>{html.escape(m['body'])}</pre></td></tr>"
                    for m in sink.newest(50)
                )
                page = (f"<!doctype html><title>Turnout mail sink</title><h1>Mail sink ({sink.total} messages)</h1>"
                        f"<table border=1 cellpadding=4><tr><th>To</th><th>From</th><th>Subject</th><th>Body</th></tr>{rows}</table>")
                return self.send(200, page.encode(), "text/html; charset=utf-8")
            return self.send(404, {"error": "unknown path"})

    return Api


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--smtp-port", type=int, required=True)
    p.add_argument("--http-port", type=int, required=True)
    p.add_argument("--account", type=parse_account, action="append", default=[], help="NAME:PASSWORD[:rate=N:concurrency=N:daily=N:delay=S]")
    p.add_argument("--user", help="shorthand for one unlimited account (with --password)")
    p.add_argument("--password")
    p.add_argument("--tls-cert", help="PEM certificate: offer STARTTLS and require it")
    p.add_argument("--tls-key", help="PEM key for --tls-cert")
    args = p.parse_args()
    accounts = list(args.account)
    if args.user:
        accounts.append(Account(args.user, args.password or ""))
    if not accounts:
        p.error("give at least one --account (or --user/--password)")

    tls = None
    if args.tls_cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
    else:
        # Loopback only: AUTH without TLS is intended here.
        warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    logging.getLogger("mail.log").setLevel(logging.ERROR)

    sink = Sink(accounts)
    controller = SinkController(
        sink,
        Handler(sink),
        hostname=args.host,
        port=args.smtp_port,
        authenticator=Authenticator(sink),
        auth_required=True,
        auth_require_tls=tls is not None,
        tls_context=tls,
        require_starttls=tls is not None,
    )
    controller.start()
    httpd = ThreadingHTTPServer((args.host, args.http_port), http_handler(sink))
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
