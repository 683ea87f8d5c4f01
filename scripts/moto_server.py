"""moto server with each request handled atomically.

moto's DynamoDB keeps no locks: a TransactWriteItems checks conditions and writes item by item and
rolls back by restoring a snapshot of the whole table, so two concurrent transactions can both pass
the same condition, and a failing one can restore away another's committed writes. Real DynamoDB
serialises transactions. Handling one request at a time (connections stay concurrent; only request
processing is serialised) gives the tests DynamoDB's isolation, so a concurrency test fails only when
our own code is wrong.

With AFTERCARE_MOTO_COUNT=1 it also counts the AWS calls it serves, by service and operation, for
the benchmark harness: ``GET /_bench/calls`` reads the counts, ``POST /_bench/reset`` clears them.

Usage: python scripts/moto_server.py HOST PORT
"""

import json
import os
import sys
import threading
from collections import Counter

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()
    counting = os.environ.get("AFTERCARE_MOTO_COUNT") == "1"
    calls: Counter[str] = Counter()

    def operation(environ) -> str:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target:  # JSON protocols: DynamoDB_20120810.PutItem
            return "DynamoDB." + target.split(".")[-1] if target.startswith("DynamoDB") else target
        path = environ.get("PATH_INFO", "")
        if path.startswith("/v2/email/outbound-emails"):
            return "SESv2.SendEmail"
        return f"{environ.get('REQUEST_METHOD')} {path}"

    def serialised(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if counting and path.startswith("/_bench/"):
            if path == "/_bench/reset":
                calls.clear()
            body = json.dumps(dict(calls)).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        with lock:
            if counting and not path.startswith("/moto-api"):
                calls[operation(environ)] += 1
            # Consume the whole response inside the lock: WSGI bodies may be lazy.
            return [b"".join(app(environ, start_response))]

    run_simple(host, port, serialised, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
