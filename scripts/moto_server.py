"""moto server with each request handled atomically.

moto's DynamoDB keeps no locks: a TransactWriteItems checks conditions and writes item by item and
rolls back by restoring a snapshot of the whole table, so two concurrent transactions can both pass
the same condition, and a failing one can restore away another's committed writes. Real DynamoDB
serialises transactions. Handling one request at a time (connections stay concurrent; only request
processing is serialised) gives the tests DynamoDB's isolation, so a concurrency test fails only when
our own code is wrong.

``GET /_test/emails?to=TEXT[&brief=1]`` lists the emails SES accepted whose recipients contain TEXT (all of
them without ``to``), straight from moto's SES backend: what ``/moto-api/data.json`` answers too, but
without serialising every DynamoDB table, which grows slow once a test has stored 100,000 items.
Each one carries the SES configuration set it was sent with (moto accepts the name and drops it).

moto backs each TransactWriteItems with a deep copy of every table it touches, to restore on
cancellation: with 100,000 items stored, each transaction copies them all. Here a transaction saves
only the items it names and puts them back if it is cancelled (requests are serialised, so no one
else can see the partial state in between).

moto answers every Query by sorting *all* items of the table by key (DynamoType comparisons in
Python) and then testing each against the key condition: about 2 s per Query at 100,000 items, and
a sweep makes 112–224 of them (14 days × 8 shards per group). Real DynamoDB reads only the
partition. Two changes, both outside what a client observes (results, order, ScannedCount and
pages are moto's own):

* the candidate list moto walks is no longer pre-sorted (moto sorts the matches afterwards anyway,
  by the index or table key, so the result order is the same);
* for a Query on an index, the candidates are the items whose index partition key equals the
  condition's, from a map built once and dropped on every request that is not a read
  (GetItem, BatchGetItem, Query, Scan, Describe/List); for a Query on the table, the items of the
  partition, narrowed to the sort-key prefix of a `begins_with`. moto still checks each candidate
  against the whole key condition, counts ScannedCount and pages exactly as before.

moto answers SES v2 GetConfigurationSet with ``"SendingEnabled": {}`` (the whole SendingOptions
object, or an empty one, where SES answers a boolean), which no SDK can parse: here it is the
boolean, true unless the set was created with sending disabled, as on SES.

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


# SES message id -> the ConfigurationSetName its SendEmail named.
CONFIGURATION_SETS: dict[str, str | None] = {}


def recorded_configuration_sets() -> None:
    """Makes SES v2 SendEmail remember the configuration set each message was sent with."""
    from moto.sesv2.responses import SESV2Response

    original = SESV2Response.send_email

    def send_email(self) -> str:
        out = original(self)
        CONFIGURATION_SETS[json.loads(out)["MessageId"]] = json.loads(self.body).get("ConfigurationSetName")
        return out

    SESV2Response.send_email = send_email


def sent_emails(to: str, brief: bool = False) -> list[dict]:
    """Every email moto's SES backends hold whose recipients contain ``to``, in sending order
    (``brief``: without the raw message, for counting thousands)."""
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
                            "raw_data": "" if brief else getattr(m, "raw_data", ""),
                            "configuration_set": CONFIGURATION_SETS.get(m.id)})
    return out


def configuration_sets_answer_a_boolean() -> None:
    """SES v2 GetConfigurationSet answers SendingOptions.SendingEnabled as a boolean."""
    from moto.ses.models import ConfigurationSet

    original = ConfigurationSet.to_dict_v2

    def to_dict_v2(self):
        out = original(self)
        enabled = self.enabled
        if isinstance(enabled, dict):
            enabled = enabled.get("SendingEnabled", True)
        out["SendingOptions"] = {"SendingEnabled": bool(enabled)}
        return out

    ConfigurationSet.to_dict_v2 = to_dict_v2


def item_scoped_transactions() -> None:
    """Makes moto's transaction rollback save and restore the named items, not whole tables."""
    import copy
    import types

    import moto.dynamodb.models as models
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    original = DynamoDBBackend.transact_write_items

    def deepcopy_but_tables(x, memo=None):
        return x if isinstance(x, Table) else copy.deepcopy(x, memo)

    def saved_items(backend, transact_items):
        saved = []
        for entry in transact_items:
            _, op = next(iter(entry.items()))
            table = backend.tables.get(op.get("TableName"))
            if table is None:
                continue
            key = op.get("Key") or op.get("Item") or {}
            if table.hash_key_attr not in key or (table.range_key_attr and table.range_key_attr not in key):
                continue
            h = DynamoType(key[table.hash_key_attr])
            r = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            old = table.items.get(h, {}).get(r) if r is not None else table.items.get(h)
            saved.append((table, h, r, copy.deepcopy(old)))
        return saved

    def restore(saved):
        for table, h, r, old in reversed(saved):
            if r is None:
                if old is None:
                    table.items.pop(h, None)
                else:
                    table.items[h] = old
            elif old is None:
                table.items.get(h, {}).pop(r, None)
                if h in table.items and not table.items[h]:
                    del table.items[h]
            else:
                table.items[h][r] = old

    def transact_write_items(self, transact_items):
        saved = saved_items(self, transact_items)
        module_copy = models.copy
        models.copy = types.SimpleNamespace(deepcopy=deepcopy_but_tables, copy=copy.copy)
        try:
            return original(self, transact_items)
        except Exception:
            restore(saved)
            raise
        finally:
            models.copy = module_copy

    DynamoDBBackend.transact_write_items = transact_write_items


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


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    item_scoped_transactions()
    faster_queries()
    recorded_configuration_sets()
    configuration_sets_answer_a_boolean()
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
            query = parse_qs(environ.get("QUERY_STRING", ""))
            to, brief = query.get("to", [""])[0], query.get("brief", [""])[0] == "1"
            with lock:
                body = json.dumps(sent_emails(to, brief)).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        with lock:
            if counting and not path.startswith("/moto-api"):
                calls[operation(environ)] += 1
            # Consume the whole response inside the lock: WSGI bodies may be lazy.
            return [b"".join(app(environ, start_response))]

    # The replay tests keep hundreds of connections opening at once (64 concurrent sweeps, each
    # with 8 Queries in flight); werkzeug's listen backlog of 128 would refuse the rest, which the
    # SDK reports as a dispatch failure, not as the slow answer it really is. The kernel caps the
    # backlog at net.core.somaxconn.
    import werkzeug.serving

    werkzeug.serving.BaseWSGIServer.request_queue_size = 4096
    run_simple(host, port, serialised, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
