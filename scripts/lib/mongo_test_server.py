"""A MongoDB-wire server for the MongoDB adapter's tests, when no MongoDB is at hand.

SecantusDB (PyPI, on WiredTiger) speaks the MongoDB wire protocol as a one-member
replica set, with transactions and unique indexes. Prints its URI as the first line on
stdout, then serves until SIGTERM/SIGINT; its data lives in a temp dir removed on exit.
Against a real MongoDB, skip this and set TURNOUT_TEST_MONGODB_URI yourself.
"""
import signal
import sys
import tempfile

from secantus import SecantusDBServer


def main() -> None:
    stop = lambda *_: sys.exit(0)  # noqa: E731
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    with tempfile.TemporaryDirectory(prefix="turnout-mongo-") as data:
        # WiredTiger sessions: one per open transaction and cursor; the conformance suite
        # runs 1,000 concurrent casts, far past the default 1,000 sessions.
        with SecantusDBServer(storage_path=data, session_max=20000) as server:
            print(server.uri, flush=True)
            while True:
                signal.pause()


if __name__ == "__main__":
    main()
