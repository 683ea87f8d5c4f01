#!/usr/bin/env python3
"""bench/moto_fast.py (the project's moto server, counting calls, error responses and SDK retries)
that also records where DynamoDB's writes and reads land, for the partition-heat benchmark
(bench/heat.py).

For every successful write request (PutItem, UpdateItem, DeleteItem, BatchWriteItem,
TransactWriteItems) it reads each affected item's image before and after the request, straight from
moto's table, and tallies per partition key value the write units and the index writes the change
costs (bench/heat_units.py: DynamoDB's size and capacity rules, the keys and indexes from the
table's DescribeTable description). A request that fails (a condition that does not hold, a cancelled
transaction, a validation error) writes nothing and is not counted. Reads: GetItem, BatchGetItem,
TransactGetItems by the items' sizes; Query by the sizes of the items it evaluated (its key
condition's matches up to its Limit, before any filter), on the queried table or index partition.

Requests are serialised (scripts/moto_server.py), so an item's images before and after a request are
exactly what that request changed.

One speed-up, outside what a client observes: a table Query with `begins_with` takes its candidates
from the partition's sort keys by bisection (see ``SortKeys``), where scripts/moto_server.py walks
the whole partition, which is slow when one merchant's partition holds every item of the burst.

``GET /_heat`` answers ``{"tallies": {target: {partition: {"wcu", "writes", "rcu", "reads"}}},
"requests": {operation: n}}`` (target: ``table`` or ``gsi:<index name>``) since the last reset;
``POST /_heat`` answers the same and resets.

Usage: python bench/moto_heat.py HOST PORT
"""

from __future__ import annotations

import bisect
import io
import json
import re
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import heat_units as hu  # noqa: E402
import moto_fast  # noqa: E402
import moto_server  # noqa: E402

WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
READS = {"GetItem", "BatchGetItem", "TransactGetItems", "Query"}
SCHEMA_CHANGES = {"CreateTable", "UpdateTable", "DeleteTable"}


class Recorder:
    def __init__(self) -> None:
        self.tallies: dict = {}
        self.requests: Counter[str] = Counter()
        self.schemas: dict[str, hu.Schema] = {}
        self.op: str | None = None  # the DynamoDB operation being served

    def reset(self) -> None:
        self.tallies = {}
        self.requests = Counter()

    def answer(self) -> dict:
        return {"tallies": self.tallies, "requests": dict(self.requests)}


RECORDER = Recorder()


class SortKeys:
    """Each queried partition's string sort keys in order, kept up to date by the writes the recorder
    sees, so a table Query with `begins_with` on a partition of 100,000 items (today's per-merchant
    partition) takes its candidates by bisection instead of walking the partition (moto's walk, in
    scripts/moto_server.py, is linear in the partition). The candidates are the same items; moto
    still checks each against the key condition, sorts, filters and pages as before."""

    def __init__(self) -> None:
        self.keys: dict[tuple[int, object], list[str]] = {}

    def clear(self) -> None:
        self.keys.clear()

    def of(self, table, h) -> list[str] | None:
        partition = table.items.get(h)
        if not isinstance(partition, dict):
            return None
        keys = self.keys.get((id(table), h))
        if keys is None or len(keys) != len(partition):
            if any(r.type != "S" for r in partition):
                return None
            keys = self.keys[(id(table), h)] = sorted(r.value for r in partition)
        return keys

    def changed(self, table, h, sk: str, before: bool, after: bool) -> None:
        keys = self.keys.get((id(table), h))
        if keys is None or before == after:
            return
        i = bisect.bisect_left(keys, sk)
        if after:
            keys.insert(i, sk)
        elif i < len(keys) and keys[i] == sk:
            del keys[i]

    def candidates(self, table, h, prefix: str) -> list | None:
        from moto.dynamodb.models.dynamo_type import DynamoType

        keys = self.of(table, h)
        if keys is None:
            return None
        lo, hi = bisect.bisect_left(keys, prefix), bisect.bisect_left(keys, prefix + "\U0010ffff")
        partition = table.items[h]
        return [partition[DynamoType({"S": k})] for k in keys[lo:hi]]


SORT_KEYS = SortKeys()


def backend(environ):
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    m = re.search(r"Credential=[^/]+/\d+/([^/]+)/", environ.get("HTTP_AUTHORIZATION", ""))
    return dynamodb_backends[DEFAULT_ACCOUNT_ID][m.group(1) if m else "us-east-1"]


def schema_of(table) -> hu.Schema:
    s = RECORDER.schemas.get(table.name)
    if s is None:
        s = RECORDER.schemas[table.name] = hu.Schema.from_describe(table.describe(base_key="Table"))
    return s


def image(table, schema: hu.Schema, key: dict) -> dict | None:
    """The stored item with primary key `key` (DynamoDB JSON), or None."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    try:
        h = DynamoType(key[schema.hash_key])
        if schema.range_key:
            item = table.items.get(h, {}).get(DynamoType(key[schema.range_key]))
        else:
            item = table.items.get(h)
    except (KeyError, TypeError):
        return None
    return item.to_json()["Attributes"] if item is not None else None


def primary_key(schema: hu.Schema, item: dict) -> dict:
    return {k: item[k] for k in schema.table_keys() if k in item}


def planned_writes(op: str, body: dict) -> list[tuple[str, dict, str, bool]]:
    """(table name, item or key, what, transactional) for each item a write request names."""
    if op == "PutItem":
        return [(body["TableName"], body["Item"], "put", False)]
    if op == "UpdateItem":
        return [(body["TableName"], body["Key"], "update", False)]
    if op == "DeleteItem":
        return [(body["TableName"], body["Key"], "delete", False)]
    out = []
    if op == "BatchWriteItem":
        for table, requests in (body.get("RequestItems") or {}).items():
            for r in requests:
                if "PutRequest" in r:
                    out.append((table, r["PutRequest"]["Item"], "put", False))
                elif "DeleteRequest" in r:
                    out.append((table, r["DeleteRequest"]["Key"], "delete", False))
    elif op == "TransactWriteItems":
        for entry in body.get("TransactItems") or []:
            for kind, what in (("Put", "put"), ("Update", "update"), ("Delete", "delete"), ("ConditionCheck", "check")):
                if kind in entry:
                    action = entry[kind]
                    out.append((action["TableName"], action.get("Item") or action.get("Key") or {}, what, True))
    return out


def record_reads(environ, op: str, body: dict) -> None:
    """GetItem, BatchGetItem and TransactGetItems, by the items' sizes (they do not change them)."""
    db = backend(environ)
    gets: list[tuple[str, dict, bool, bool]] = []
    if op == "GetItem":
        gets.append((body["TableName"], body["Key"], bool(body.get("ConsistentRead")), False))
    elif op == "BatchGetItem":
        for table, spec in (body.get("RequestItems") or {}).items():
            gets.extend((table, k, bool(spec.get("ConsistentRead")), False) for k in spec.get("Keys") or [])
    elif op == "TransactGetItems":
        for entry in body.get("TransactItems") or []:
            get = entry.get("Get") or {}
            gets.append((get.get("TableName", ""), get.get("Key") or {}, True, True))
    for name, key, consistent, transactional in gets:
        table = db.tables.get(name)
        if table is None:
            continue
        schema = schema_of(table)
        size = hu.item_size(image(table, schema, key))
        hu.add_read(RECORDER.tallies, hu.TABLE, schema.partition(key), hu.read_units(size, consistent, transactional))


def install() -> None:
    from moto.dynamodb.models.table import Table
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    dispatch = DomainDispatcherApplication.__call__
    moto_query = Table.query
    override: dict = {"candidates": None, "installed": False}

    def narrowed(self, *args, **kwargs):
        """A table Query with `begins_with` on a string sort key: its candidates by bisection."""
        def peek(i: int, name: str):
            return args[i] if len(args) > i else kwargs.get(name)
        hash_key, comparison, range_objs = peek(0, "hash_key"), peek(1, "range_comparison"), peek(2, "range_objs")
        if (peek(7, "index_name") or hash_key is None or not self.range_key_attr or comparison != "BEGINS_WITH"
                or not range_objs or getattr(range_objs[0], "type", None) != "S"):
            return None
        try:
            return SORT_KEYS.candidates(self, hash_key, range_objs[0].value)
        except (KeyError, TypeError):
            return None

    def fast_query(self, *args, **kwargs):
        if not override["installed"]:  # over scripts/moto_server.py's all_items, installed after this module's
            serving_all_items = Table.all_items

            def all_items(table):
                found = override["candidates"]
                return list(found) if found is not None else serving_all_items(table)

            Table.all_items = all_items
            override["installed"] = True
        override["candidates"] = narrowed(self, *args, **kwargs)
        try:
            return moto_query(self, *args, **kwargs)
        finally:
            override["candidates"] = None

    def query(self, *args, **kwargs):
        if RECORDER.op != "Query":
            return fast_query(self, *args, **kwargs)
        args = list(args)

        def take(i: int, name: str):
            if len(args) > i:
                value, args[i] = args[i], None
            else:
                value = kwargs.pop(name, None)
                if name in ("projection_expressions", "filter_expression"):
                    kwargs[name] = None
            return value

        def peek(i: int, name: str):
            return args[i] if len(args) > i else kwargs.get(name)

        projection = take(6, "projection_expressions")
        condition = take(9, "filter_expression")
        hash_key, index_name, consistent = peek(0, "hash_key"), peek(7, "index_name"), peek(8, "consistent_read")
        if hash_key is None and kwargs.get("hash_key_conditions"):
            hash_key = kwargs["hash_key_conditions"][0][1]
        results, scanned, last = fast_query(self, *args, **kwargs)
        size = sum(hu.item_size(r.to_json()["Attributes"]) for r in results)
        target = f"gsi:{index_name}" if index_name else hu.TABLE
        if hash_key is not None:
            hu.add_read(RECORDER.tallies, target, hu.scalar(hash_key.to_json()),
                        hu.read_units(size, bool(consistent)))
        if condition is not None:
            results = [r for r in results if condition.expr(r)]
        if projection:
            results = [r.project(projection) for r in results]
        return results, scanned, last

    def call(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/_heat":
            body = json.dumps(RECORDER.answer()).encode()
            if environ.get("REQUEST_METHOD") == "POST":
                RECORDER.reset()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        op = target.rsplit(".", 1)[-1] if target.startswith("DynamoDB") else ""
        if op in SCHEMA_CHANGES:
            RECORDER.schemas.clear()
            SORT_KEYS.clear()
        if op not in WRITES and op not in READS:
            return dispatch(self, environ, start_response)
        raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(raw)
        try:
            request = json.loads(raw or b"{}")
        except ValueError:
            return dispatch(self, environ, start_response)
        status: list[int] = []

        def recording(status_line, headers, exc_info=None):
            status.append(int(status_line.split()[0]))
            return start_response(status_line, headers, exc_info)

        if op in READS:
            RECORDER.op = op
            try:
                out = b"".join(dispatch(self, environ, recording))
            finally:
                RECORDER.op = None
            if status and status[0] == 200:
                RECORDER.requests[op] += 1
                if op != "Query":
                    record_reads(environ, op, request)
            return [out]

        db = backend(environ)
        before = []
        for name, item, what, transactional in planned_writes(op, request):
            table = db.tables.get(name)
            if table is None:
                continue
            schema = schema_of(table)
            key = primary_key(schema, item)
            before.append((table, schema, key, image(table, schema, key), what, transactional))
        out = b"".join(dispatch(self, environ, recording))
        if status and status[0] == 200:
            RECORDER.requests[op] += 1
            for table, schema, key, old, what, transactional in before:
                new = old if what == "check" else image(table, schema, key)
                if schema.range_key and (old is None) != (new is None) and "S" in key.get(schema.range_key, {}):
                    from moto.dynamodb.models.dynamo_type import DynamoType
                    SORT_KEYS.changed(table, DynamoType(key[schema.hash_key]), key[schema.range_key]["S"],
                                      old is not None, new is not None)
                for w in hu.item_writes(schema, key, old, new, what, transactional):
                    hu.add_write(RECORDER.tallies, w)
        return [out]

    Table.query = query
    DomainDispatcherApplication.__call__ = call


if __name__ == "__main__":
    moto_fast.outcomes()
    install()
    moto_server.main()
