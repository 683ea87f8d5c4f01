"""Every condition expression in shared/src/adapters/store/ has a row in tests/conditions.tsv (the
catalogue scripts/mutate-conditions runs each guarding test against), and the catalogue reads the
source as rustc does. No network, no cargo."""

import importlib.machinery
import importlib.util
import tempfile
import unittest
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "mutate-conditions"
_loader = importlib.machinery.SourceFileLoader("mutate_conditions", str(SCRIPT))
_spec = importlib.util.spec_from_loader("mutate_conditions", _loader)
mc = importlib.util.module_from_spec(_spec)
_loader.exec_module(mc)


class Catalogue(unittest.TestCase):
    def test_every_condition_of_the_store_has_a_row_and_every_row_a_condition(self):
        rows = mc.read_catalogue()
        self.assertEqual(mc.check(rows), [])
        self.assertGreaterEqual(len(rows), 60)

    def test_a_new_condition_without_a_row_is_reported(self):
        rows = mc.read_catalogue()
        with tempfile.TemporaryDirectory() as d:
            store = Path(d)
            for path in mc.STORE.glob("*.rs"):
                (store / path.name).write_text(path.read_text())
            orders = store / "orders.rs"
            orders.write_text(orders.read_text() + """
fn late(s: &Store) { s.update_item(&k).condition_expression("attribute_exists(PK) AND \\
     x = :y"); items.push(put_new(&t, i)?); items.push(write::put(&t, i, Some("z = :z"))?); }
""")
            problems = mc.check(rows, store)
        self.assertIn("orders.rs: 1 condition(s) 'attribute_exists(PK) AND x = :y', 0 row(s) in "
                      "tests/conditions.tsv", problems)
        self.assertIn("orders.rs: 3 condition(s) 'put_new', 2 row(s) in tests/conditions.tsv", problems)
        self.assertIn("orders.rs: 1 condition(s) 'z = :z', 0 row(s) in tests/conditions.tsv", problems)

    def test_a_row_whose_condition_left_the_source_is_reported(self):
        rows = mc.read_catalogue() + [dict(id="orders.gone", file="orders.rs", source="a = :gone",
                                           op="Update", key="", condition="a = :gone",
                                           test="order_placed::x", prevents="")]
        self.assertIn("orders.gone: 'a = :gone' is not a condition of orders.rs", mc.check(rows))

    def test_every_joint_mutation_names_two_catalogued_conditions_or_more(self):
        rows = mc.read_catalogue()
        self.assertEqual(mc.check_joint(rows, mc.read_joint()), [])
        bad = [dict(ids="orders.order_new+orders.gone", test="expiry::x", why=""),
               dict(ids="orders.order_new", test="expiry::x", why="")]
        self.assertEqual(mc.check_joint(rows, bad), [
            "joint orders.order_new+orders.gone: no condition orders.gone",
            "joint orders.order_new: a group needs two conditions or more",
        ])

    def test_sources_read_literals_format_strings_variables_and_helpers(self):
        text = '''
            // .condition_expression("commented out")
            .condition_expression(format!("{seen} AND size(e) < :cap"))
            .condition_expression(condition)
            .condition_expression("a = :a \\
                 AND b = :b")
            let x = self.update_seen(due, None);
            put_new(&t, item)?;
            pub(crate) fn put_new(table: &str) { put(table, item, Some("attribute_not_exists(PK)")) }
        '''
        self.assertEqual(sorted(mc.sources(text)), sorted([
            "{seen} AND size(e) < :cap", "condition", "a = :a AND b = :b", "update_seen", "put_new",
        ]))


if __name__ == "__main__":
    unittest.main()
