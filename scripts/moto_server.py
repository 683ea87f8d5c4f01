"""moto server with each request handled atomically.

moto's DynamoDB keeps no locks: a TransactWriteItems checks conditions and writes item by item and
rolls back by restoring a snapshot of the whole table, so two concurrent transactions can both pass
the same condition, and a failing one can restore away another's committed writes. Real DynamoDB
serialises transactions. Handling one request at a time (connections stay concurrent; only request
processing is serialised) gives the tests DynamoDB's isolation, so a concurrency test fails only when
our own code is wrong.

Usage: python scripts/moto_server.py HOST PORT
"""

import sys
import threading

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def serialised(environ, start_response):
        with lock:
            # Consume the whole response inside the lock: WSGI bodies may be lazy.
            return [b"".join(app(environ, start_response))]

    run_simple(host, port, serialised, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
