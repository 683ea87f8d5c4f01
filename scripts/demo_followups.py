"""The post-delivery part of the local demo: days of virtual time after SO-1001's delivery.

Every function reads its clock as the system clock plus the seconds in AFTERCARE_VIRTUAL_CLOCK_FILE;
this script writes that file to move the whole system to ~10:00 in the customer's time zone on the
first morning each follow-up is due (outside quiet hours, far apart enough for the frequency cap),
computed from the delivery time the demo recorded, so the run does not depend on when it starts.

  +3 days   sweep → usage tips
  +7 days   sweep → feedback survey; the customer answers 3/10 with a comment (a detractor) in a real
            headless Chromium (AFTERCARE_DEMO_BROWSER=chromium) or by plain HTTP: the merchant gets
            an alert, the review request and cross-sell are cancelled; GET /v1/feedback
  +14 days  sweep → nothing for SO-1001 (its review request was cancelled)
  then      RFC 8058 one-click unsubscribe from a marketing email's List-Unsubscribe URL

Usage: demo_followups.py API_BASE MOTO_ENDPOINT API_KEY CLOCK_FILE MERCHANT_JSON OUTDIR
"""

from __future__ import annotations

import email
import json
import math
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone
from email import policy
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

ORDER = "SO-1001"
SCORE = 3
COMMENT = "The tent arrived with a torn fly sheet and nobody answered my email."
LOCAL_HOUR = 10


def fail(msg: str) -> None:
    sys.exit(f"demo failed: {msg}")


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def api_json(method: str, url: str, key: str | None = None, body=None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    status, _, raw = http(method, url, json.dumps(body).encode() if body is not None else None, headers)
    try:
        return status, json.loads(raw or b"null")
    except ValueError:
        fail(f"{method} {url}: {status} with a body that is not JSON: {raw[:200]!r}")


def first_local_hour(at: datetime, tz: ZoneInfo, hour: int) -> datetime:
    """The first `hour`:00 in `tz` at or after `at` (aware), in UTC. Across a DST change the local
    hour still is `hour` (the zone's rules decide the UTC instant)."""
    day = at.astimezone(tz).date()
    while True:
        candidate = datetime(day.year, day.month, day.day, hour, tzinfo=tz)
        if candidate >= at:
            return candidate.astimezone(timezone.utc)
        day += timedelta(days=1)


class Page(HTMLParser):
    """What the demo needs from a page: forms, inputs, textareas and elements by id."""

    def __init__(self, text: str):
        super().__init__()
        self.forms: list[dict] = []
        self.links: list[tuple[str, str]] = []  # (href, text), attributes unescaped
        self._link: list | None = None
        self.ids: dict[str, str] = {}
        self._id_stack: list[tuple[str, str]] = []
        self._textarea: dict | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"method": (a.get("method") or "get").lower(), "action": a.get("action"),
                               "inputs": [], "textareas": {}})
        elif tag == "input" and self.forms:
            self.forms[-1]["inputs"].append(a)
        elif tag == "textarea" and self.forms:
            self._textarea = {"name": a.get("name"), "text": ""}
        elif tag == "a" and a.get("href"):
            self._link = [a["href"], ""]
        if "id" in a and tag not in ("input", "textarea"):
            self._id_stack.append((tag, a["id"]))
            self.ids[a["id"]] = ""

    def handle_endtag(self, tag):
        if tag == "textarea" and self._textarea is not None and self.forms:
            self.forms[-1]["textareas"][self._textarea["name"]] = self._textarea["text"]
            self._textarea = None
        if tag == "a" and self._link is not None:
            self.links.append((self._link[0], self._link[1].strip()))
            self._link = None
        if self._id_stack and self._id_stack[-1][0] == tag:
            self._id_stack.pop()

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea["text"] += data
        if self._link is not None:
            self._link[1] += data
        for _, ident in self._id_stack:
            self.ids[ident] += data


class Demo:
    def __init__(self, api: str, moto: str, key: str, clock_file: str, merchant: dict, outdir: str):
        self.api, self.moto, self.key, self.clock_file = api.rstrip("/"), moto.rstrip("/"), key, clock_file
        self.merchant, self.outdir = merchant, outdir
        self.seen = 0  # SES messages already reported
        self.virtual_now: datetime | None = None

    # --- the world -------------------------------------------------------------------------------

    def emails(self) -> list:
        with urllib.request.urlopen(self.moto + "/moto-api/data.json", timeout=30) as r:
            data = json.load(r)
        return [email.message_from_string(m["raw_data"], policy=policy.default)
                for m in data.get("ses", {}).get("RawMessage", [])]

    def new_emails(self) -> list:
        all_ = self.emails()
        new, self.seen = all_[self.seen:], len(all_)
        return new

    def set_clock(self, target: datetime, tz: ZoneInfo, what: str) -> None:
        # Rounded up: a function reading its clock right after this sees `target` or later, never before.
        offset = math.ceil(target.timestamp() - time.time())
        tmp = self.clock_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{offset}\n")
        os.replace(tmp, self.clock_file)  # a function never reads half a number
        self.virtual_now = target
        local = target.astimezone(tz)
        print(f"→ virtual clock: {local:%a %Y-%m-%d %H:%M} {tz.key} ({what}; offset {offset} s)")

    def sweep(self) -> dict:
        entry = {"Source": "aws.events", "DetailType": "Scheduled Event", "Detail": "{}"}
        status, body = api_json("POST", f"{self.api}/_local/events", body={"Entries": [entry]})
        if status != 200:
            fail(f"POST /_local/events: {status} {body}")
        by_fn = {r["function"]: r for r in body["Results"]}
        for name in ("shipment-update", "survey-sender"):
            if name not in by_fn:
                fail(f"the scheduled event did not reach {name} (is it in infra/template.yaml?): {body}")
            if not by_fn[name]["ok"]:
                fail(f"{name}'s sweep failed: {by_fn[name]['response']}")
        s, f = by_fn["survey-sender"]["response"], by_fn["shipment-update"]["response"]
        print(f"→ sweep: survey-sender {s['due']} due, {s['sent']} sent, {s['deferred']} deferred, "
              f"{s['skipped']} skipped, {s['failed']} failed, {s['ambiguous']} ambiguous; "
              f"shipment-update {f.get('journeys_anchored', 0)} journey(s) anchored")
        for k in ("failed", "ambiguous", "errors", "left_for_next_run"):
            if s.get(k):
                fail(f"the follow-up sweep reported {k}: {s}")
        return s

    def order(self) -> dict:
        status, body = api_json("GET", f"{self.api}/v1/orders/{ORDER}", self.key)
        if status != 200:
            fail(f"GET /v1/orders/{ORDER}: {status} {body}")
        return body

    @staticmethod
    def describe(msg) -> str:
        return f"{msg['X-Aftercare-Kind']} → {msg['To']}  “{msg['Subject']}”"

    def expect_emails(self, wanted: list[tuple[str, str]]) -> list:
        """The emails sent since the last look must be exactly `wanted` (kind, recipient address)."""
        new = self.new_emails()
        for m in new:
            print(f"     email: {self.describe(m)}")
        got = sorted((str(m["X-Aftercare-Kind"]), m["To"].addresses[0].addr_spec) for m in new)
        if got != sorted(wanted):
            fail(f"expected emails {sorted(wanted)}, got {got}")
        return new

    # --- the customer's answer -------------------------------------------------------------------

    def answer_by_browser(self, link: str) -> None:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from browser_survey import answer_survey

        t0 = time.monotonic()
        seen = answer_survey(link, SCORE, COMMENT, self.outdir)
        print(f"→ headless {seen['browser']}: opened the score-{SCORE} link, “{seen['heading']}” with "
              f"{seen['scores']} scores, {seen['preselected']} pre-selected; typed a comment, submitted")
        print(f"→ thank-you page: “{seen['thanks']}” ({time.monotonic() - t0:.1f} s); screenshots "
              + ", ".join(seen["screenshots"]))

    def answer_by_http(self, link: str) -> None:
        status, _, raw = http("GET", link)
        if status != 200:
            fail(f"GET the survey page: {status} {raw[:300]!r}")
        page = Page(raw.decode())
        forms = [f for f in page.forms if f["method"] == "post"]
        if len(forms) != 1:
            fail(f"the survey page has {len(forms)} post forms")
        form = forms[0]
        radios = [i for i in form["inputs"] if i.get("type") == "radio" and i.get("name") == "score"]
        checked = [i.get("value") for i in radios if "checked" in i]
        if checked != [str(SCORE)]:
            fail(f"the survey page pre-selects {checked}, not the clicked score {SCORE}")
        if "comment" not in form["textareas"]:
            fail("the survey page has no comment box")
        action = urllib.parse.urljoin(link, form["action"] or link)
        print(f"→ GET score-{SCORE} link: 200, {len(radios)} scores, {checked[0]} pre-selected (nothing recorded yet)")
        body = urllib.parse.urlencode({"score": checked[0], "comment": COMMENT}).encode()
        status, _, raw = http("POST", action, body, {"Content-Type": "application/x-www-form-urlencoded"})
        thanks = Page(raw.decode()).ids.get("thanks")
        if status != 200 or thanks is None:
            fail(f"POST the survey form: {status}, no #thanks: {raw[:300]!r}")
        print(f"→ POST the form (score={SCORE}, comment): {status} “{thanks.strip()}”")

    # --- the journey ---------------------------------------------------------------------------

    def run(self) -> None:
        self.seen = len(self.emails())
        order = self.order()
        shipments = order["shipments"]
        if order["status"] != "delivered" or not shipments or not all(s.get("delivered_at") for s in shipments):
            fail(f"{ORDER} is not delivered: {order['status']}")
        delivered = max(datetime.fromisoformat(s["delivered_at"].replace("Z", "+00:00")) for s in shipments)
        customer = order["order"]["customer"]
        tz = ZoneInfo(customer.get("time_zone") or self.merchant["time_zone"])
        addr = customer["email"]
        due = {f["kind"]: datetime.fromisoformat(f["due_at"].replace("Z", "+00:00")) for f in order["follow_ups"]}
        print(f"{ORDER} delivered {delivered.astimezone(tz):%Y-%m-%d %H:%M} {tz.key}; the customer, {addr}, "
              f"reads mail in {tz.key}")

        def step(kind: str, days: int) -> datetime:
            target = first_local_hour(delivered + timedelta(days=days), tz, LOCAL_HOUR)
            if kind in due and due[kind] > target:
                fail(f"{kind} is due {due[kind]}, after the chosen {target}")
            self.set_clock(target, tz, f"{kind.replace('_', ' ')} due since delivery + {days} d")
            return target

        # +3 days: usage tips.
        step("usage_tips", 3)
        report = self.sweep()
        if report["sent"] != 1:
            fail(f"expected the usage tips to be sent: {report}")
        tips = self.expect_emails([("usage_tips", addr)])[0]

        # +7 days: the survey.
        survey_at = step("feedback_survey", 7)
        report = self.sweep()
        if report["sent"] != 1:
            fail(f"expected the survey to be sent: {report}")
        survey = self.expect_emails([("feedback_survey", addr)])[0]
        html_part = survey.get_body(preferencelist=("html",)).get_content()
        links = {int(text): href for href, text in Page(html_part).links
                 if "/v1/survey/" in href and text.isdigit()}
        if sorted(links) != list(range(11)):
            fail(f"the survey email's score links are {sorted(links)}, not 0..10")
        link = links[SCORE]
        if not link.startswith(self.api + "/v1/survey/"):
            fail(f"the score link {link} does not point at this API ({self.api})")
        print(f"→ the survey email has 11 one-click score links, e.g. {link[:60]}…")

        if os.environ.get("AFTERCARE_DEMO_BROWSER") == "chromium":
            self.answer_by_browser(link)
        else:
            self.answer_by_http(link)

        alert = self.expect_emails([("merchant_detractor_alert", self.merchant["ops_email"])])[0]
        alert_text = alert.get_body(preferencelist=("plain",)).get_content()
        if COMMENT not in alert_text:
            fail("the merchant alert does not quote the customer's comment")
        score_line = next((l.strip() for l in alert_text.splitlines() if l.startswith("Score:")), "")
        print(f"→ the merchant's alert: “{alert_text.strip().splitlines()[0]}”; {score_line}; quotes the comment")

        follow_ups = {f["kind"]: f["status"] for f in self.order()["follow_ups"]}
        print("→ GET /v1/orders/SO-1001 follow-ups: " + ", ".join(f"{k} {v}" for k, v in follow_ups.items()))
        wanted = {"usage_tips": "sent", "feedback_survey": "sent", "cross_sell": "cancelled", "review_request": "cancelled"}
        if follow_ups != wanted:
            fail(f"expected follow-ups {wanted}, got {follow_ups}")

        q = urllib.parse.urlencode({"from": (delivered - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                                    "to": (survey_at + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")})
        status, fb = api_json("GET", f"{self.api}/v1/feedback?{q}", self.key)
        if status != 200:
            fail(f"GET /v1/feedback: {status} {fb}")
        s = fb["summary"]
        print(f"→ GET /v1/feedback: {s['responses']} response(s) to {s['surveys_sent']} survey(s) "
              f"(rate {s['response_rate']}), {s['detractors']} detractor(s), {s['passives']} passive(s), "
              f"{s['promoters']} promoter(s), {s['scale']} score {s['score']}")
        mine = [r for r in fb["responses"] if r["order_id"] == ORDER]
        if len(mine) != 1 or mine[0]["score"] != SCORE or mine[0]["comment"] != COMMENT or mine[0]["band"] != "detractor":
            fail(f"the stored answer is not score {SCORE} with the comment typed: {mine}")
        if s["responses"] != 1 or s["detractors"] != 1 or s["surveys_sent"] != 1:
            fail(f"unexpected feedback summary: {s}")
        r = mine[0]
        print(f"     {r['order_id']}: {r['score']} ({r['band']}) “{r['comment']}”")

        # +14 days: the review request would be due, but the detractor answer cancelled it.
        step("review_request", 14)
        # Meanwhile SO-1002 (never delivered) reached shipping + 10 days: shipment-update anchors its
        # journey there (the fallback), and its usage tips are due at once.
        self.sweep()
        status, other = api_json("GET", f"{self.api}/v1/orders/SO-1002", self.key)
        if status != 200:
            fail(f"GET /v1/orders/SO-1002: {status} {other}")
        anchors = sorted({f["anchor_reason"] for f in other["follow_ups"]})
        print(f"     SO-1002, never delivered: journey anchored ({', '.join(anchors) or 'not yet'})")
        self.expect_emails([("usage_tips", other["order"]["customer"]["email"])])
        print(f"→ nothing sent for {ORDER}: its review request and cross-sell were cancelled")

        # RFC 8058 one-click unsubscribe, as a mail provider does it from the usage tips' header.
        lu, lup = tips["List-Unsubscribe"], tips["List-Unsubscribe-Post"]
        m = re.search(r"<(https?://[^>]+)>", str(lu or ""))
        if not m or str(lup) != "List-Unsubscribe=One-Click":
            fail(f"the marketing email lacks one-click unsubscribe headers: {lu!r} {lup!r}")
        url = m.group(1)
        if not url.startswith(self.api + "/v1/unsubscribe/"):
            fail(f"the List-Unsubscribe URL {url} does not point at this API")
        status, _, raw = http("POST", url, b"List-Unsubscribe=One-Click",
                              {"Content-Type": "application/x-www-form-urlencoded"})
        if status != 200:
            fail(f"one-click unsubscribe: {status} {raw[:300]!r}")
        print(f"→ POST List-Unsubscribe=One-Click to the usage tips' List-Unsubscribe URL: {status}")
        status, _, raw = http("GET", url)
        heading = Page(raw.decode()).ids.get("status")
        if status != 200 or heading is None:
            fail(f"GET the unsubscribe page: {status} {raw[:300]!r}")
        print(f"→ GET the unsubscribe page: {status} “{heading.strip()}”")


def main() -> int:
    api, moto, key, clock_file, merchant_json, outdir = sys.argv[1:7]
    with open(merchant_json) as f:
        merchant = json.load(f)
    Demo(api, moto, key, clock_file, merchant, outdir).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
