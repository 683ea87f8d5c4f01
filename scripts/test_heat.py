"""The partition-heat benchmark's arithmetic (bench/heat_units.py) and how its moto recorder reads a
write request (bench/moto_heat.py): item sizes, capacity units, the index writes of an item's old and
new image, the tallies' shares and the per-merchant ceiling. No network."""

import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import heat_units as hu  # noqa: E402

DESCRIBE = {"Table": {
    "TableName": "t",
    "KeySchema": [{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
    "GlobalSecondaryIndexes": [
        {"IndexName": "g", "KeySchema": [{"AttributeName": "GPK", "KeyType": "HASH"},
                                         {"AttributeName": "GSK", "KeyType": "RANGE"}],
         "Projection": {"ProjectionType": "ALL"}},
        {"IndexName": "k", "KeySchema": [{"AttributeName": "KPK", "KeyType": "HASH"}],
         "Projection": {"ProjectionType": "KEYS_ONLY"}},
        {"IndexName": "i", "KeySchema": [{"AttributeName": "IPK", "KeyType": "HASH"}],
         "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["status"]}},
    ],
}}
SCHEMA = hu.Schema.from_describe(DESCRIBE)
KEY = {"PK": {"S": "M#m"}, "SK": {"S": "ORDER#1"}}


def S(v):
    return {"S": v}


def item(**attrs):
    return {**KEY, **{k: S(v) for k, v in attrs.items()}}


class ItemSize(unittest.TestCase):
    def test_strings_and_names_count_their_utf8_bytes(self):
        self.assertEqual(hu.item_size({"a": S("xyz")}), 1 + 3)
        self.assertEqual(hu.item_size({"straße": S("é")}), 7 + 2)

    def test_numbers_cost_one_byte_per_two_significant_digits_plus_one(self):
        self.assertEqual(hu.number_size("7"), 2)
        self.assertEqual(hu.number_size("123"), 3)
        self.assertEqual(hu.number_size("1000"), 2)  # trailing zeros trimmed
        self.assertEqual(hu.number_size("0.05"), 2)  # leading zeros trimmed
        self.assertEqual(hu.number_size("-12.34"), 3)  # sign and point are not digits
        self.assertEqual(hu.number_size("1.5E+10"), 2)  # nor is the exponent
        self.assertEqual(hu.item_size({"n": {"N": "1700000000123"}}), 1 + 7 + 1)

    def test_binary_counts_raw_bytes_and_bool_null_one_byte(self):
        self.assertEqual(hu.item_size({"b": {"B": "AAEC"}}), 1 + 3)  # base64 of 3 bytes
        self.assertEqual(hu.item_size({"t": {"BOOL": True}, "z": {"NULL": True}}), 2 + 2)

    def test_lists_and_maps_have_three_bytes_and_one_per_element(self):
        self.assertEqual(hu.item_size({"l": {"L": []}}), 1 + 3)
        self.assertEqual(hu.item_size({"l": {"L": [S("ab"), {"N": "1"}]}}), 1 + 3 + (1 + 2) + (1 + 2))
        self.assertEqual(hu.item_size({"m": {"M": {"key": S("v")}}}), 1 + 3 + (1 + 3 + 1))
        self.assertEqual(hu.item_size({"m": {"M": {"x": {"L": [S("a")]}}}}), 1 + 3 + (1 + 1 + (3 + 1 + 1)))

    def test_sets_are_the_sum_of_their_elements(self):
        self.assertEqual(hu.item_size({"s": {"SS": ["ab", "c"]}}), 1 + 3)
        self.assertEqual(hu.item_size({"s": {"NS": ["12", "3"]}}), 1 + 2 + 2)

    def test_no_item_has_no_size(self):
        self.assertEqual(hu.item_size(None), 0)


class Units(unittest.TestCase):
    def test_a_write_costs_a_unit_per_started_kilobyte_of_the_larger_image(self):
        small, exact, over = ({"d": S("x" * n)} for n in (10, 1023, 1024))  # name "d": 1 byte
        self.assertEqual(hu.write_units(None, small), 1)
        self.assertEqual(hu.write_units(None, exact), 1)  # 1,024 bytes
        self.assertEqual(hu.write_units(None, over), 2)  # 1,025 bytes
        self.assertEqual(hu.write_units(over, small), 2)  # an update that shrinks the item
        self.assertEqual(hu.write_units(over, None), 2)  # a delete: the old image
        self.assertEqual(hu.write_units(None, None), 1)  # deleting a missing item still costs 1

    def test_transactional_writes_cost_twice(self):
        self.assertEqual(hu.write_units(None, {"d": S("x" * 1024)}, transactional=True), 4)

    def test_reads_cost_a_unit_per_started_4_kb_half_when_eventually_consistent(self):
        self.assertEqual(hu.read_units(0, consistent=True), 1)
        self.assertEqual(hu.read_units(4096, consistent=True), 1)
        self.assertEqual(hu.read_units(4097, consistent=True), 2)
        self.assertEqual(hu.read_units(4097, consistent=False), 1)
        self.assertEqual(hu.read_units(100, consistent=False, transactional=True), 2)


class IndexWrites(unittest.TestCase):
    g = SCHEMA.indexes[0]

    def writes(self, old, new, index=None):
        return [(w.partition, w.what) for w in hu.index_writes(SCHEMA, index or self.g, old, new)]

    def test_the_schema_comes_from_describe_table(self):
        self.assertEqual((SCHEMA.table, SCHEMA.hash_key, SCHEMA.range_key), ("t", "PK", "SK"))
        self.assertEqual([(i.name, i.hash_key, i.range_key, i.projection) for i in SCHEMA.indexes],
                         [("g", "GPK", "GSK", "ALL"), ("k", "KPK", None, "KEYS_ONLY"),
                          ("i", "IPK", None, "INCLUDE")])
        self.assertEqual(SCHEMA.indexes[2].non_key, ("status",))

    def test_a_new_index_key_is_one_put_on_the_new_partition(self):
        self.assertEqual(self.writes(None, item(GPK="A", GSK="1")), [("A", "index-put")])
        self.assertEqual(self.writes(item(x="1"), item(x="1", GPK="A", GSK="1")), [("A", "index-put")])

    def test_a_changed_index_key_deletes_on_the_old_partition_and_puts_on_the_new(self):
        self.assertEqual(self.writes(item(GPK="A", GSK="1"), item(GPK="B", GSK="1")),
                         [("A", "index-delete"), ("B", "index-put")])
        # Only the index sort key moved: still a delete and a put, both on the same partition.
        self.assertEqual(self.writes(item(GPK="A", GSK="1"), item(GPK="A", GSK="2")),
                         [("A", "index-delete"), ("A", "index-put")])

    def test_the_same_index_key_with_a_changed_projection_is_one_write(self):
        self.assertEqual(self.writes(item(GPK="A", GSK="1", x="1"), item(GPK="A", GSK="1", x="2")),
                         [("A", "index-update")])

    def test_an_unchanged_entry_or_an_item_never_in_the_index_costs_nothing(self):
        same = item(GPK="A", GSK="1", x="1")
        self.assertEqual(self.writes(same, dict(same)), [])
        self.assertEqual(self.writes(item(x="1"), item(x="2")), [])
        self.assertEqual(self.writes(None, item(GPK="A")), [])  # no index sort key: not in the index

    def test_removing_the_index_key_is_one_delete(self):
        self.assertEqual(self.writes(item(GPK="A", GSK="1"), item()), [("A", "index-delete")])
        self.assertEqual(self.writes(item(GPK="A", GSK="1"), None), [("A", "index-delete")])

    def test_a_keys_only_index_ignores_other_attributes_and_include_keeps_its_own(self):
        k, i = SCHEMA.indexes[1], SCHEMA.indexes[2]
        self.assertEqual(self.writes(item(KPK="A", x="1"), item(KPK="A", x="2"), k), [])
        self.assertEqual(self.writes(item(IPK="A", x="1"), item(IPK="A", x="2"), i), [])
        self.assertEqual(self.writes(item(IPK="A", status="new"), item(IPK="A", status="sent"), i),
                         [("A", "index-update")])
        self.assertEqual(SCHEMA.project(k, item(KPK="A", x="1")), {**KEY, "KPK": S("A")})

    def test_index_writes_are_sized_by_the_projected_entry(self):
        big = "x" * 3000
        (w,) = hu.index_writes(SCHEMA, SCHEMA.indexes[1], None, item(KPK="A", x=big))
        self.assertEqual(w.units, 1)  # KEYS_ONLY: the 3 KB attribute is not in the entry
        (w,) = hu.index_writes(SCHEMA, self.g, None, item(GPK="A", GSK="1", x=big))
        self.assertEqual(w.units, 3)

    def test_an_item_write_lands_on_its_partition_and_every_index_it_touches(self):
        writes = hu.item_writes(SCHEMA, KEY, item(GPK="A", GSK="1"), item(GPK="B", GSK="1", KPK="K"), "update",
                                transactional=True)
        self.assertEqual([(w.target, w.partition, w.units, w.what) for w in writes],
                         [("table", "M#m", 2, "update"), ("gsi:g", "A", 1, "index-delete"),
                          ("gsi:g", "B", 1, "index-put"), ("gsi:k", "K", 1, "index-put")])

    def test_a_condition_check_is_a_transactional_write_of_the_table_only(self):
        checked = item(GPK="A", GSK="1")
        writes = hu.item_writes(SCHEMA, KEY, checked, checked, "check", transactional=True)
        self.assertEqual([(w.target, w.units) for w in writes], [("table", 2)])


class Summary(unittest.TestCase):
    def test_shares_ceilings_and_top_keys(self):
        tallies: dict = {}
        for partition, units in (("M#m", 6), ("M#m", 6), ("M#m#C#1", 4), ("M#m#C#2", 4)):
            hu.add_write(tallies, hu.Write(hu.TABLE, partition, units, "put"))
        hu.add_write(tallies, hu.Write("gsi:due", "DUE#0", 1, "index-put"))
        hu.add_read(tallies, hu.TABLE, "M#m", 0.5)
        s = hu.summarise(tallies, orders=4, top=2)
        self.assertEqual(list(s), ["table", "gsi:due"])  # the base table first
        w = s["table"]["writes"]
        self.assertEqual((w["units"], w["requests"], w["distinct_keys"]), (20, 4, 3))
        self.assertEqual(w["hottest"], {"key": "M#m", "units": 12, "share": 0.6, "units_per_order": 3.0})
        self.assertAlmostEqual(w["ceiling_orders_per_s"], 1000 / 3)
        self.assertEqual([t["key"] for t in w["top"]], ["M#m", "M#m#C#1"])  # ties by key
        r = s["table"]["reads"]
        self.assertEqual((r["units"], r["hottest"]["units_per_order"]), (0.5, 0.125))
        self.assertEqual(r["ceiling_orders_per_s"], 3000 / 0.125)
        self.assertNotIn("reads", s["gsi:due"])

    def test_merge_adds_the_phases(self):
        a = {"table": {"P": {"wcu": 2, "writes": 1, "rcu": 0.5, "reads": 1}}}
        b = {"table": {"P": {"wcu": 3, "writes": 2, "rcu": 0.0, "reads": 0}, "Q": hu.empty_cell()}}
        self.assertEqual(hu.merge(a, b)["table"]["P"], {"wcu": 5, "writes": 3, "rcu": 0.5, "reads": 1})

    def test_the_ceiling_is_the_partition_limit_over_the_units_per_order(self):
        self.assertEqual(hu.ceiling(hu.PARTITION_WCU_PER_S, 16.0), 62.5)
        self.assertIsNone(hu.ceiling(hu.PARTITION_WCU_PER_S, 0))


class Requests(unittest.TestCase):
    """How the recorder names the items of a write request (needs moto, as the test command has)."""

    def test_every_item_a_write_request_names(self):
        try:
            import moto_heat
        except ImportError as e:  # the recorder's server needs moto; the arithmetic above does not
            self.skipTest(f"moto is not installed: {e}")
        put = {"Item": item(x="1")}
        planned = moto_heat.planned_writes("TransactWriteItems", {"TransactItems": [
            {"Put": {"TableName": "t", **put}}, {"Update": {"TableName": "t", "Key": KEY}},
            {"ConditionCheck": {"TableName": "t", "Key": KEY}}, {"Delete": {"TableName": "t", "Key": KEY}}]})
        self.assertEqual([(t, what, tx) for t, _, what, tx in planned],
                         [("t", "put", True), ("t", "update", True), ("t", "check", True), ("t", "delete", True)])
        planned = moto_heat.planned_writes("BatchWriteItem", {"RequestItems": {"t": [
            {"PutRequest": put}, {"DeleteRequest": {"Key": KEY}}]}})
        self.assertEqual([(what, tx) for _, _, what, tx in planned], [("put", False), ("delete", False)])
        self.assertEqual(moto_heat.primary_key(SCHEMA, item(x="1")), KEY)


if __name__ == "__main__":
    unittest.main()
