"""moto server with each request handled atomically.

moto's DynamoDB keeps no locks: a TransactWriteItems checks conditions and writes item by item and
rolls back by restoring a snapshot of the whole table, so two concurrent transactions can both pass
the same condition, and a failing one can restore away another's committed writes. Real DynamoDB
serialises transactions. Handling one request at a time (connections stay concurrent; only request
processing is serialised) gives the tests DynamoDB's isolation, so a concurrency test fails only when
our own code is wrong.

``GET /_test/emails?to=TEXT`` lists the emails SES accepted whose recipients contain TEXT (all of
them without ``to``), straight from moto's SES backend: what ``/moto-api/data.json`` answers too, but
without serialising every DynamoDB table, which grows slow once a test has stored 100,000 items.

With AFTERCARE_MOTO_COUNT=1 it also counts the AWS calls it serves, by service and operation, for
the benchmark harness: ``GET /_bench/calls`` reads the counts, ``POST /_bench/reset`` clears them.

Usage: python scripts/moto_server.py HOST PORT
"""

import json
import os
import sys
import threading
from collections import Counter
from urllib.parse import parse_qs

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app


def sent_emails(to: str) -> list[dict]:
    """Every email moto's SES backends hold whose recipients contain ``to``, in sending order."""
    from moto.ses import ses_backends

    out = []
    for regions in list(ses_backends.values()):
        for backend in list(regions.values()):
            for m in list(backend.sent_messages):
                destinations = m.destinations
                if isinstance(destinations, dict):  # Message: {"ToAddresses": [...], ...}
                    destinations = [a for group in destinations.values() for a in group]
                if to and not any(to in d for d in destinations):
                    continue
                out.append({"id": m.id, "source": m.source, "destinations": destinations,
                            "raw_data": getattr(m, "raw_data", "")})
    return out


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
        if path == "/_test/emails":
            to = parse_qs(environ.get("QUERY_STRING", "")).get("to", [""])[0]
            with lock:
                body = json.dumps(sent_emails(to)).encode()
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
