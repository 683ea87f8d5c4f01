"""Tests of browser_returns.py's pure parts (which line, reason and resolution the customer picks,
the screenshot names, the tampered link); no browser needed.

Run: python3 -m unittest discover -s scripts -p 'test_*.py'
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import browser_returns as br  # noqa: E402


class PickLine(unittest.TestCase):
    def test_the_first_line_with_a_unit_to_return(self):
        self.assertEqual(br.pick_line([(0, 0), (1, 2), (2, 1)]), 1)

    def test_lines_are_taken_in_order_whatever_order_they_come_in(self):
        self.assertEqual(br.pick_line([(3, 1), (1, 1)]), 1)

    def test_nothing_to_return(self):
        self.assertIsNone(br.pick_line([(0, 0), (1, 0)]))
        self.assertIsNone(br.pick_line([]))


class PickResolution(unittest.TestCase):
    def test_store_credit_when_offered(self):
        self.assertEqual(br.pick_resolution(["refund", "store_credit", "exchange"]), "store_credit")

    def test_else_the_first_offered(self):
        self.assertEqual(br.pick_resolution(["exchange", "refund"]), "exchange")

    def test_none_offered(self):
        self.assertIsNone(br.pick_resolution([]))


class LineIndex(unittest.TestCase):
    def test_a_quantity_field_names_its_line(self):
        self.assertEqual(br.line_index("qty-0"), 0)
        self.assertEqual(br.line_index("qty-12"), 12)

    def test_other_fields_name_no_line(self):
        for name in ("reason-0", "exchange-1", "qty-", "qty-x", "qty", ""):
            self.assertIsNone(br.line_index(name), name)


class Names(unittest.TestCase):
    def test_screenshots_are_named_by_page_and_width(self):
        self.assertEqual(br.screenshot_path("out", "so-1001", "mobile"), os.path.join("out", "returns-so-1001.mobile.png"))

    def test_a_tampered_link_differs_in_one_character_of_the_signature(self):
        url = "http://127.0.0.1:9/v1/return/eyJtIjoibSJ9.abcdefgh"
        bad = br.tamper(url)
        self.assertEqual(len(bad), len(url))
        self.assertEqual(sum(a != b for a, b in zip(url, bad)), 1)
        self.assertTrue(bad.startswith("http://127.0.0.1:9/v1/return/eyJtIjoibSJ9.abcde"))
        self.assertEqual(br.tamper("http://x/v1/return/t.xxAxx")[-3], "B")


if __name__ == "__main__":
    unittest.main()
