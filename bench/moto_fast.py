#!/usr/bin/env python3
"""The project's moto server (scripts/moto_server.py: serialised requests, item-scoped transaction
rollback, call counting with AFTERCARE_MOTO_COUNT=1) with faster Query for the benchmark's
100,000-item sweeps. Results are unchanged; only moto's own time is.

moto answers every Query by sorting *all* items of the table by key (DynamoType comparisons in
Python) and then testing each against the key condition: about 2 s per Query at 100,000 items, and
a sweep makes 112–224 of them (14 days × 8 shards per group). Real DynamoDB reads only the
partition. Two changes, both outside what the function observes:

* the candidate list moto walks is no longer pre-sorted (moto sorts the matches afterwards anyway,
  by the index or table key, so the result order is the same);
* for a Query on an index, the candidates are the items whose index partition key equals the
  condition's, from a map built once and dropped on every request that is not a read
  (GetItem, BatchGetItem, Query, Scan, Describe/List); for a Query on the table, the items of the
  partition, narrowed to the sort-key prefix of a `begins_with`. moto still checks each candidate
  against the whole key condition, counts ScannedCount and pages exactly as before.

It also counts, per operation, the error responses it serves and the SDK retries it receives (see
``outcomes``), for the "0 retries on the happy path" budget.

Usage: python bench/moto_fast.py HOST PORT
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import moto_server  # noqa: E402

READ_ONLY = {"GetItem", "BatchGetItem", "Query", "Scan", "DescribeTable", "ListTables",
             "DescribeTimeToLive", "DescribeContinuousBackups", "ListTagsOfResource"}


def faster_queries() -> None:
    from moto.dynamodb.models.table import Table
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    sorted_items = Table.all_items
    original_query = Table.query
    # (id(table), attribute) -> {(type, value): [items]}; valid while only reads are served.
    buckets: dict[tuple[int, str], dict[tuple[str, object], list]] = {}
    state: dict[str, object] = {"candidates": None}

    def every_item(table) -> list:
        if table.range_key_attr:
            return [item for partition in table.items.values() for item in partition.values()]
        return list(table.items.values())

    def all_items(self) -> list:
        candidates = state["candidates"]
        if candidates is None:
            return sorted_items(self)
        return candidates(self)  # type: ignore[operator]

    def index_bucket(table, attr: str, value) -> list | None:
        try:
            wanted = (value.type, value.value)
            hash(wanted)
        except (AttributeError, TypeError):
            return None
        key = (id(table), attr)
        by_value = buckets.get(key)
        if by_value is None:
            by_value = {}
            for item in every_item(table):
                v = item.attrs.get(attr)
                if v is None:
                    continue
                try:
                    by_value.setdefault((v.type, v.value), []).append(item)
                except TypeError:  # an unhashable value: no map for this attribute
                    return None
            buckets[key] = by_value
        return list(by_value.get(wanted, []))

    def query(self, *args, **kwargs):
        def arg(i: int, name: str):
            return args[i] if len(args) > i else kwargs.get(name)
        hash_key, comparison, range_objs, index_name = (arg(0, "hash_key"), arg(1, "range_comparison"),
                                                        arg(2, "range_objs"), arg(7, "index_name"))
        conditions = kwargs.get("hash_key_conditions") or []

        def candidates(table):
            if index_name:
                if len(conditions) == 1:
                    attr, value = conditions[0]
                    found = index_bucket(table, attr, value)
                    if found is not None:
                        return found
                return every_item(table)
            if hash_key is None or not table.range_key_attr:
                return every_item(table)
            try:
                partition = table.items.get(hash_key)
            except TypeError:
                return every_item(table)
            found = list(partition.values()) if partition else []
            if comparison == "BEGINS_WITH" and range_objs and getattr(range_objs[0], "type", None) == "S":
                prefix = range_objs[0].value
                found = [i for i in found if i.range_key is not None and i.range_key.type == "S"
                         and i.range_key.value.startswith(prefix)]
            return found

        state["candidates"] = candidates
        try:
            return original_query(self, *args, **kwargs)
        finally:
            state["candidates"] = None

    dispatch = DomainDispatcherApplication.__call__

    def call(self, environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.startswith("DynamoDB") or target.rsplit(".", 1)[-1] not in READ_ONLY:
            buckets.clear()
        return dispatch(self, environ, start_response)

    DomainDispatcherApplication.__call__ = call
    Table.all_items = all_items
    Table.query = query


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
    faster_queries()
    outcomes()
    moto_server.main()
