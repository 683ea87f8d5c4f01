"""Tests of browser_returns.py's and demo_returns.py's pure parts (which line, reason and resolution
the customer picks, the screenshot names, the tampered link, reading the pages, the return's
history, the credit email's figures, EasyPost's signed delivery scan); no browser needed.

Run: python3 -m unittest discover -s scripts -p 'test_*.py'
"""

import email
import hashlib
import hmac
import json
import os
import sys
import unittest
from datetime import datetime, timezone
from email import policy
from email.message import EmailMessage

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


CREDIT_TEXT = """Your store credit is ready

Hi Ann,

We have added €249.00 in store credit to your account. As a thank-you for choosing store credit, we have added a bonus of €24.90, so you receive €273.90 in total.
Return number: R8A5B76A097798589
Credit: €249.00
Bonus: €24.90
Added in total: €273.90
Your new balance: €1,273.90
"""


def message(kind: str, to: str, text: str = "") -> EmailMessage:
    m = EmailMessage()
    m["To"] = f"Ann Lee <{to}>"
    m["X-Aftercare-Kind"] = kind
    m.set_content(text)
    # Parsed back, as the demo reads SES's raw messages and the .eml files.
    return email.message_from_bytes(m.as_bytes(), policy=policy.default)


class DemoReturnJourney(unittest.TestCase):
    def test_the_tracking_page_of_the_first_delivered_shipment(self):
        order = {"shipments": [{"id": "a", "tracking_page_url": "http://x/t/a"},
                               {"id": "b", "delivered_at": "2026-12-04T13:05:00Z", "tracking_page_url": "http://x/t/b"}]}
        self.assertEqual(dr.tracking_page_of(order), "http://x/t/b")
        self.assertIsNone(dr.tracking_page_of({"shipments": [{"id": "a", "tracking_page_url": "http://x/t/a"}]}))

    def test_the_one_portal_return_of_the_order(self):
        mine = {"id": "r1", "order_id": "SO-1001", "source": "portal"}
        listing = {"returns": [mine, {"id": "r2", "order_id": "SO-1001", "source": "api"},
                               {"id": "r3", "order_id": "SO-1002", "source": "portal"}]}
        self.assertEqual(dr.portal_return(listing, "SO-1001"), mine)
        self.assertIsNone(dr.portal_return({"returns": [mine, dict(mine, id="r4")]}, "SO-1001"))
        self.assertIsNone(dr.portal_return({"returns": []}, "SO-1001"))

    def test_who_moved_a_return(self):
        record = {"history": [{"status": "requested", "by": "customer"}, {"status": "approved", "by": "merchant"},
                              {"status": "received", "by": "carrier"}]}
        self.assertEqual(dr.moved_by(record, "received"), ["carrier"])
        self.assertEqual(dr.moved_by(record, "resolved"), [])

    def test_amounts_as_shown_in_minor_units(self):
        self.assertEqual(dr.minor_units("€1,234.50"), 123450)
        self.assertEqual(dr.minor_units("24,90 €"), 2490)
        self.assertEqual(dr.minor_units("—"), 0)

    def test_the_figures_of_a_credit_email(self):
        self.assertEqual(dr.credit_shown(CREDIT_TEXT), {"amount": 24900, "bonus": 2490, "balance": 127390})

    def test_the_bonus_rounds_half_up_as_the_ledger_does(self):
        self.assertEqual(dr.bonus_of(24900, 10), 2490)
        self.assertEqual(dr.bonus_of(995, 10), 100)
        self.assertEqual(dr.bonus_of(994, 10), 99)
        self.assertEqual(dr.bonus_of(24900, 0), 0)

    def test_one_received_and_one_credit_email_with_the_bonus(self):
        ann = "ann.lee@example.com"
        messages = [message("return_requested", ann), message("return_received", ann),
                    message("store_credit_issued", ann, CREDIT_TEXT), message("store_credit_issued", "bob@example.com")]
        problems, shown = dr.credit_email_problems(messages, ann, 10)
        self.assertEqual(problems, [])
        self.assertEqual(shown["balance"], 127390)

    def test_a_missing_or_repeated_email_or_a_wrong_bonus_is_named(self):
        ann = "ann.lee@example.com"
        twice = [message("store_credit_issued", ann, CREDIT_TEXT)] * 2
        problems, _ = dr.credit_email_problems(twice, ann, 10)
        self.assertEqual(problems, [f"0 return_received email(s) to {ann}, not 1",
                                    f"2 store_credit_issued email(s) to {ann}, not 1"])
        problems, _ = dr.credit_email_problems([message("return_received", ann),
                                                message("store_credit_issued", ann, CREDIT_TEXT)], ann, 20)
        self.assertEqual(len(problems), 1)
        self.assertIn("not 20 %", problems[0])
        no_balance = CREDIT_TEXT.replace("Your new balance: €1,273.90\n", "")
        problems, _ = dr.credit_email_problems([message("return_received", ann),
                                                message("store_credit_issued", ann, no_balance)], ann, 10)
        self.assertEqual(problems, ["the store credit email does not show its balance"])

    def test_easypost_delivery_scan_of_the_return_parcel(self):
        event = dr.easypost_delivered("evt_1", "JJD1", "DHLExpress", datetime(2026, 12, 19, 10, 5, tzinfo=timezone.utc))
        self.assertEqual((event["description"], event["result"]["tracking_code"], event["result"]["status"]),
                         ("tracker.updated", "JJD1", "delivered"))
        self.assertEqual([d["status"] for d in event["result"]["tracking_details"]], ["delivered"])
        self.assertEqual(event["result"]["tracking_details"][0]["datetime"], "2026-12-19T10:05:00Z")

    def test_easypost_signature(self):
        raw = json.dumps({"id": "evt_1"}).encode()
        expected = hmac.new("ﬁsecret".replace("ﬁ", "fi").encode(), raw, hashlib.sha256).hexdigest()
        # The key is the NFKD form of the secret (the ligature becomes "fi").
        self.assertEqual(dr.easypost_signature("ﬁsecret", raw), f"hmac-sha256-hex={expected}")


if __name__ == "__main__":
    unittest.main()
