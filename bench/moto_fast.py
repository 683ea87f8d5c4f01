#!/usr/bin/env python3
"""The project's moto server (scripts/moto_server.py: serialised requests, item-scoped transaction
rollback, partition-scoped Query, call counting with AFTERCARE_MOTO_COUNT=1) that also counts, per
operation, the error responses it serves and the SDK retries it receives (see ``outcomes``), for the
"0 retries on the happy path" budget.

Usage: python bench/moto_fast.py HOST PORT
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import moto_server  # noqa: E402


def outcomes() -> None:
    """Counts, per operation, the error responses moto serves (by error code) and the SDK retries it
    receives (the `amz-sdk-request: attempt=N` header every AWS SDK sends, N > 1 on a retry).
    ``GET /moto-api/bench-outcomes`` reads them, ``POST`` reads and clears them."""
    import json
    import re
    from collections import Counter

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    errors: Counter[str] = Counter()
    retries: Counter[str] = Counter()
    dispatch = DomainDispatcherApplication.__call__

    def operation(environ) -> str:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target:
            return ("DynamoDB." if target.startswith("DynamoDB") else "") + target.rsplit(".", 1)[-1]
        return f"{environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO', '')}"

    def call(self, environ, start_response):
        if environ.get("PATH_INFO") == "/moto-api/bench-outcomes":
            body = json.dumps({"errors": dict(errors), "retries": dict(retries)}).encode()
            if environ.get("REQUEST_METHOD") == "POST":
                errors.clear()
                retries.clear()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        op = operation(environ)
        attempt = re.search(r"attempt=(\d+)", environ.get("HTTP_AMZ_SDK_REQUEST", ""))
        if attempt and int(attempt.group(1)) > 1:
            retries[op] += 1
        status: list[int] = []

        def recording(status_line, headers, exc_info=None):
            status.append(int(status_line.split()[0]))
            return start_response(status_line, headers, exc_info)

        body = b"".join(dispatch(self, environ, recording))
        if status and status[0] >= 400:
            code = re.search(rb'"__type"\s*:\s*"(?:[^"#]*#)?([^"]+)"|<Code>([^<]+)</Code>|"(?:Code|code)"\s*:\s*"([^"]+)"', body)
            name = next((g.decode() for g in code.groups() if g), "?") if code else "?"
            errors[f"{op} {status[0]} {name}"] += 1
        return [body]

    DomainDispatcherApplication.__call__ = call


if __name__ == "__main__":
    outcomes()
    moto_server.main()
