"""Tests of the local demo's pure helpers (virtual times, page parsing).

Run: python3 -m unittest discover -s scripts -p 'test_*.py'
"""

import os
import sys
import unittest
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from demo_followups import Page, first_local_hour  # noqa: E402

LONDON = ZoneInfo("Europe/London")
UTC = timezone.utc


class FirstLocalHour(unittest.TestCase):
    def test_after_the_hour_moves_to_the_next_morning(self):
        at = datetime(2026, 11, 25, 13, 5, tzinfo=UTC)
        self.assertEqual(first_local_hour(at, LONDON, 10), datetime(2026, 11, 26, 10, 0, tzinfo=UTC))

    def test_before_the_hour_stays_on_the_day(self):
        at = datetime(2026, 11, 25, 7, 59, tzinfo=UTC)
        self.assertEqual(first_local_hour(at, LONDON, 10), datetime(2026, 11, 25, 10, 0, tzinfo=UTC))

    def test_exactly_the_hour(self):
        at = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
        self.assertEqual(first_local_hour(at, LONDON, 10), at)

    def test_summer_time_is_local(self):
        # BST (UTC+1): 10:00 in London is 09:00 UTC.
        at = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
        got = first_local_hour(at, LONDON, 10)
        self.assertEqual(got, datetime(2026, 7, 2, 9, 0, tzinfo=UTC))
        self.assertEqual(got.astimezone(LONDON).hour, 10)

    def test_across_the_clock_change(self):
        # The morning after the switch to BST (2026-03-29 01:00 UTC).
        at = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
        self.assertEqual(first_local_hour(at, LONDON, 10), datetime(2026, 3, 29, 9, 0, tzinfo=UTC))


class PageParsing(unittest.TestCase):
    def test_links_with_escaped_slashes(self):
        # minijinja escapes "/" in attributes as &#x2f;
        html = ('<td><a href="http:&#x2f;&#x2f;127.0.0.1:9&#x2f;v1&#x2f;survey&#x2f;t0" style="x">0</a></td>'
                '<td><a href="http:&#x2f;&#x2f;127.0.0.1:9&#x2f;v1&#x2f;survey&#x2f;t3">\n 3 \n</a></td>')
        self.assertEqual(Page(html).links, [("http://127.0.0.1:9/v1/survey/t0", "0"),
                                            ("http://127.0.0.1:9/v1/survey/t3", "3")])

    def test_form_radios_textarea_and_ids(self):
        html = """<h1 id="survey-heading">Confirm <b>your</b> answer</h1>
        <form method="post" action="http://x/v1/survey/t">
          <input type="radio" name="score" id="score-2" value="2" required>
          <input type="radio" name="score" id="score-3" value="3" checked required>
          <textarea id="comment" name="comment" rows="4">earlier</textarea>
          <button type="submit">Send</button>
        </form>"""
        page = Page(html)
        self.assertEqual(page.ids["survey-heading"], "Confirm your answer")
        (form,) = page.forms
        self.assertEqual(form["method"], "post")
        self.assertEqual(form["action"], "http://x/v1/survey/t")
        checked = [i["value"] for i in form["inputs"] if i.get("name") == "score" and "checked" in i]
        self.assertEqual(checked, ["3"])
        self.assertEqual(form["textareas"], {"comment": "earlier"})


if __name__ == "__main__":
    unittest.main()
