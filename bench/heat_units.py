"""The arithmetic of the partition-heat benchmark (bench/heat.py), pure and without network: item
sizes, capacity units, the writes a base-table write causes on each global secondary index, the
per-partition tallies and the per-merchant throughput ceiling they imply.

Item size follows DynamoDB's documented rule ("DynamoDB item sizes and formats"), computed from the
item's DynamoDB JSON (``{"name": {"S": "..."}}``):

* every attribute: the UTF-8 bytes of its name plus the size of its value;
* S: UTF-8 bytes; B: raw bytes (the base64 text decoded); BOOL and NULL: 1 byte;
* N: 1 byte per two significant digits (leading and trailing zeros trimmed, sign, point and
  exponent not counted) + 1 byte: DynamoDB documents this as approximate;
* L and M: 3 bytes + for each element 1 byte + its size (in an M, also its key's UTF-8 bytes);
* SS, NS, BS: the sum of the elements' sizes (DynamoDB documents no set overhead; none is added).

A write costs ceil(size / 1 KB) write units of the larger of the item's old and new image (at least
1; a delete of a missing item still costs 1), twice that in a TransactWriteItems; a ConditionCheck in
a transaction is charged as a transactional write of the checked item on its partition (it takes
part in the transaction's prepare and commit) but changes no index. Each global secondary index
costs, per the "provisioned throughput considerations for global secondary indexes": a put when the
new image has the index key, plus a delete of the old index entry when the old image had a different
index key; one write when the key is unchanged and a projected attribute changed; none when the
item is in the index neither before nor after, or its projection did not change. Index writes are
sized by the projected entry (index keys + table keys + projected attributes) and are not doubled
in transactions (indexes are updated asynchronously, as standard writes).

Reads: ceil(size / 4 KB) read units per item (GetItem, each key of a BatchGetItem; a missing item
costs 1), the sum of the sizes of all items a Query evaluated rounded up once per Query; half for an
eventually consistent read, twice for a TransactGetItems.

The ceiling: a partition serves at most 1,000 write units and 3,000 read units per second, so a
key that takes U units per order caps one merchant at 1,000 ÷ U orders per second (3,000 ÷ U for
reads).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

PARTITION_WCU_PER_S = 1000
PARTITION_RCU_PER_S = 3000
TABLE = "table"  # the target name of the base table in the tallies; an index is "gsi:<name>"


def utf8_len(s: str) -> int:
    return len(s.encode("utf-8"))


def number_size(text: str) -> int:
    """Size of an N value: 1 byte per two significant digits + 1."""
    mantissa = re.split(r"[eE]", text.strip(), maxsplit=1)[0].lstrip("+-")
    digits = mantissa.replace(".", "").strip("0")
    return math.ceil(max(len(digits), 1) / 2) + 1


def binary_size(value: object) -> int:
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    try:
        return len(base64.b64decode(str(value), validate=True))
    except (binascii.Error, ValueError):
        return utf8_len(str(value))


def value_size(value: Mapping) -> int:
    """Size of one DynamoDB JSON attribute value (without its name)."""
    ((kind, v),) = value.items()
    if kind == "S":
        return utf8_len(v)
    if kind == "N":
        return number_size(str(v))
    if kind == "B":
        return binary_size(v)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(utf8_len(x) for x in v)
    if kind == "NS":
        return sum(number_size(str(x)) for x in v)
    if kind == "BS":
        return sum(binary_size(x) for x in v)
    if kind == "L":
        return 3 + sum(1 + value_size(x) for x in v)
    if kind == "M":
        return 3 + sum(1 + utf8_len(k) + value_size(x) for k, x in v.items())
    raise ValueError(f"unknown DynamoDB type {kind!r}")


def item_size(item: Mapping | None) -> int:
    """Size of an item in DynamoDB JSON (0 for no item)."""
    if not item:
        return 0
    return sum(utf8_len(name) + value_size(v) for name, v in item.items())


def write_units(old: Mapping | None, new: Mapping | None, transactional: bool = False) -> int:
    units = max(1, math.ceil(max(item_size(old), item_size(new)) / 1024))
    return 2 * units if transactional else units


def read_units(size: int, consistent: bool, transactional: bool = False) -> float:
    units = float(max(1, math.ceil(size / 4096)))
    if transactional:
        return 2 * units
    return units if consistent else units / 2


def scalar(value: Mapping) -> str:
    """A key attribute's value as text (S, N or B)."""
    ((_, v),) = value.items()
    return v.decode("latin-1") if isinstance(v, (bytes, bytearray)) else str(v)


@dataclass(frozen=True)
class Index:
    name: str
    hash_key: str
    range_key: str | None
    projection: str = "ALL"  # ALL, KEYS_ONLY or INCLUDE
    non_key: tuple[str, ...] = ()

    def key(self, item: Mapping | None) -> tuple[str, str | None] | None:
        """The item's (index partition key, index sort key), None when it is not in the index."""
        if not item or self.hash_key not in item or (self.range_key and self.range_key not in item):
            return None
        return scalar(item[self.hash_key]), scalar(item[self.range_key]) if self.range_key else None


@dataclass(frozen=True)
class Schema:
    """What DescribeTable says of the keys: the base table's and each global secondary index's."""

    table: str
    hash_key: str
    range_key: str | None
    indexes: tuple[Index, ...] = field(default_factory=tuple)

    @staticmethod
    def from_describe(description: Mapping) -> Schema:
        """From DescribeTable's answer (its ``Table`` or the whole answer)."""
        t = description.get("Table", description)

        def keys(schema: Iterable[Mapping]) -> tuple[str, str | None]:
            by_type = {}
            for k in schema:
                by_type.setdefault(k["KeyType"], k["AttributeName"])
            return by_type["HASH"], by_type.get("RANGE")

        h, r = keys(t["KeySchema"])
        indexes = []
        for g in t.get("GlobalSecondaryIndexes") or []:
            ih, ir = keys(g["KeySchema"])
            p = g.get("Projection") or {}
            indexes.append(Index(g["IndexName"], ih, ir, p.get("ProjectionType", "ALL"),
                                 tuple(p.get("NonKeyAttributes") or ())))
        return Schema(t["TableName"], h, r, tuple(indexes))

    def table_keys(self) -> tuple[str, ...]:
        return (self.hash_key,) + ((self.range_key,) if self.range_key else ())

    def partition(self, item: Mapping) -> str:
        return scalar(item[self.hash_key])

    def project(self, index: Index, item: Mapping | None) -> dict | None:
        """The index entry of an item (None when the item is not in the index)."""
        if item is None or index.key(item) is None:
            return None
        if index.projection == "ALL":
            return dict(item)
        keep = set(self.table_keys()) | {index.hash_key} | ({index.range_key} if index.range_key else set())
        if index.projection == "INCLUDE":
            keep |= set(index.non_key)
        return {k: v for k, v in item.items() if k in keep}


@dataclass(frozen=True)
class Write:
    target: str  # TABLE or "gsi:<name>"
    partition: str
    units: int
    what: str  # put, update, delete, check, index-put, index-update, index-delete


def index_writes(schema: Schema, index: Index, old: Mapping | None, new: Mapping | None) -> list[Write]:
    """The writes one base-table item write causes on one global secondary index."""
    target = f"gsi:{index.name}"
    old_key, new_key = index.key(old), index.key(new)
    old_entry, new_entry = schema.project(index, old), schema.project(index, new)
    out: list[Write] = []
    if old_key is not None and new_key == old_key:
        if old_entry != new_entry:
            units = max(1, math.ceil(max(item_size(old_entry), item_size(new_entry)) / 1024))
            out.append(Write(target, old_key[0], units, "index-update"))
        return out
    if old_key is not None:
        out.append(Write(target, old_key[0], max(1, math.ceil(item_size(old_entry) / 1024)), "index-delete"))
    if new_key is not None:
        out.append(Write(target, new_key[0], max(1, math.ceil(item_size(new_entry) / 1024)), "index-put"))
    return out


def item_writes(schema: Schema, key: Mapping, old: Mapping | None, new: Mapping | None, what: str,
                transactional: bool = False) -> list[Write]:
    """Every write (base table and indexes) of one successful write of the item with primary key
    `key`. ``what``: put, update, delete, or check (a transaction's ConditionCheck: the table's
    write units only)."""
    out = [Write(TABLE, schema.partition(key), write_units(old, new, transactional), what)]
    if what != "check":
        for index in schema.indexes:
            out.extend(index_writes(schema, index, old, new))
    return out


# --------------------------------------------------------------------------------------------------
# Tallies: {target: {partition: {"wcu", "writes", "rcu", "reads"}}}


def empty_cell() -> dict:
    return {"wcu": 0, "writes": 0, "rcu": 0.0, "reads": 0}


def add_write(tallies: dict, w: Write) -> None:
    cell = tallies.setdefault(w.target, {}).setdefault(w.partition, empty_cell())
    cell["wcu"] += w.units
    cell["writes"] += 1


def add_read(tallies: dict, target: str, partition: str, units: float) -> None:
    cell = tallies.setdefault(target, {}).setdefault(partition, empty_cell())
    cell["rcu"] += units
    cell["reads"] += 1


def merge(*tallies: Mapping) -> dict:
    out: dict = {}
    for t in tallies:
        for target, parts in t.items():
            for p, c in parts.items():
                cell = out.setdefault(target, {}).setdefault(p, empty_cell())
                for k in cell:
                    cell[k] += c.get(k, 0)
    return out


def ceiling(limit_per_s: float, units_per_order: float) -> float | None:
    """Orders per second one partition key allows when it takes `units_per_order` per order."""
    return limit_per_s / units_per_order if units_per_order > 0 else None


def summarise(tallies: Mapping, orders: int, top: int = 5) -> dict:
    """Per target: totals, distinct keys, the hottest key and its share, units per order, the
    ceiling, and the top keys; for writes and (where there were any) reads."""
    out: dict = {}
    for target in sorted(tallies, key=lambda t: (t != TABLE, t)):
        parts = tallies[target]
        entry: dict = {}
        for kind, unit, limit in (("writes", "wcu", PARTITION_WCU_PER_S), ("reads", "rcu", PARTITION_RCU_PER_S)):
            total = sum(c[unit] for c in parts.values())
            if total <= 0:
                continue
            ranked = sorted(((p, c[unit]) for p, c in parts.items() if c[unit] > 0), key=lambda x: (-x[1], x[0]))
            hot_key, hot_units = ranked[0]
            per_order = hot_units / orders if orders else 0.0
            entry[kind] = {
                "units": total,
                "requests": sum(c[kind] for c in parts.values()),
                "distinct_keys": len(ranked),
                "hottest": {"key": hot_key, "units": hot_units, "share": hot_units / total,
                            "units_per_order": per_order},
                "ceiling_orders_per_s": ceiling(limit, per_order),
                "top": [{"key": p, "units": u, "share": u / total} for p, u in ranked[:top]],
            }
        if entry:
            out[target] = entry
    return out
