"""Tests of browser_returns.py's and demo_returns.py's pure parts (which line, reason and resolution
the customer picks, the screenshot names, the tampered link, reading the pages); no browser needed.

Run: python3 -m unittest discover -s scripts -p 'test_*.py'
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import browser_returns as br  # noqa: E402
import demo_returns as dr  # noqa: E402

PORTAL = """
<form method="post" action="http://127.0.0.1:9/v1/return/t" id="return-form">
<input type="hidden" name="key" value="01kbtx">
<select id="qty-0" name="qty-0"><option value="0" selected>0</option></select>
<select id="qty-1" name="qty-1"><option value="0" selected>0</option><option value="1">1</option><option value="2">2</option></select>
<select id="reason-1" name="reason-1"><option value="">Choose a reason</option><option value="too_small">Too small</option></select>
<input type="radio" id="resolution-refund" name="resolution" value="refund" checked>
<input type="radio" id="resolution-store_credit" name="resolution" value="store_credit">
</form>
"""


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


class DemoPages(unittest.TestCase):
    def test_the_form_a_customer_sends(self):
        self.assertEqual(dr.form_of(PORTAL), {"key": "01kbtx", "qty-1": "1", "reason-1": "too_small",
                                              "resolution": "store_credit", "comment": ""})

    def test_nothing_to_send_when_nothing_may_come_back(self):
        self.assertIsNone(dr.form_of(PORTAL.replace('<option value="1">1</option><option value="2">2</option>', "")))

    def test_the_start_return_link_of_a_tracking_page(self):
        page = '<p id="start-return">Need to return something? <a href="http:&#x2f;&#x2f;x&#x2f;v1&#x2f;return&#x2f;t.s">Start</a></p>'
        self.assertEqual(dr.start_return_link(page), "http://x/v1/return/t.s")
        self.assertIsNone(dr.start_return_link("<p>Delivered</p>"))

    def test_the_return_number_of_a_confirmation(self):
        self.assertEqual(dr.return_number('<dd id="return-number">R0123456789ABCDEF</dd>'), "R0123456789ABCDEF")
        self.assertIsNone(dr.return_number('<h1 id="error">No</h1>'))


if __name__ == "__main__":
    unittest.main()
