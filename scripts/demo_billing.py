"""The subscription part of the local demo: Ann also subscribes to the merchant's gear-care club.

It goes on from the virtual clock demo_followups.py left behind and moves it on, at 10:00 in Ann's
time zone:

  now           PUT /v1/subscriptions/{id} (monthly, renews in 10 days); the same body again → unchanged
  renewal − 7 d renewal-checker's daily sweep → the renewal reminder; a rerun sends nothing; the
                reminder's one-click "manage" link → the hosted page (no portal URL configured)
  renewal day   Stripe `invoice.payment_failed` (signed as Stripe does) → the first dunning email at
                once; the same event again → nothing
  + 3 days      billing-alert's hourly sweep → the day-3 reminder
  + 1 day       Stripe `invoice.paid` → "you're all set", dunning stops; GET /v1/billing/recovery

Usage: demo_billing.py API_BASE MOTO_ENDPOINT API_KEY CLOCK_FILE MERCHANT_JSON ORDER_JSON
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
import time
import urllib.parse
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from demo_followups import LOCAL_HOUR, Demo, Page, api_json, fail, first_local_hour, http

SUBSCRIPTION = "sub_demo_gearcare"
INVOICE = "in_demo_0001"
PRICE = 1490


def iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Billing(Demo):
    def __init__(self, api, moto, key, clock_file, merchant, order):
        super().__init__(api, moto, key, clock_file, merchant, outdir="")
        self.customer = order["customer"]
        self.tz = ZoneInfo(self.customer.get("time_zone") or merchant["time_zone"])
        self.addr = self.customer["email"]
        try:
            with open(clock_file) as f:
                offset = int(f.read().strip() or 0)
        except FileNotFoundError:
            offset = 0
        self.virtual_now = datetime.fromtimestamp(time.time() + offset, timezone.utc)

    def at(self, target: datetime, what: str) -> None:
        self.set_clock(target, self.tz, what)

    def invoke_schedule(self, function: str) -> dict:
        """The function's EventBridge schedule fires (only that function: other sweeps stay put)."""
        event = {"version": "0", "id": f"demo-{function}-{time.time_ns()}", "detail-type": "Scheduled Event",
                 "source": "aws.events", "time": iso(self.virtual_now), "detail": {}}
        status, headers, raw = http("POST", f"{self.api}/_local/invoke/{function}", json.dumps(event).encode(),
                                    {"Content-Type": "application/json"})
        if status != 200 or "X-Amz-Function-Error" in headers:
            fail(f"{function}'s sweep: {status} {raw[:300]!r}")
        report = json.loads(raw)
        for k in ("failed", "ambiguous", "errors", "left_for_next_run"):
            if report.get(k):
                fail(f"{function}'s sweep reported {k}: {report}")
        return report

    def stripe(self, event_id: str, kind: str, obj: dict) -> tuple[int, dict]:
        """Posts a Stripe event signed exactly as Stripe signs it (t=…,v1=HMAC-SHA256 of "t.body")."""
        t = int(self.virtual_now.timestamp())
        body = json.dumps({"id": event_id, "object": "event", "type": kind, "created": t,
                           "data": {"object": obj}}).encode()
        secret = self.merchant["webhook_secrets"][0].encode()
        sig = hmac.new(secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
        status, _, raw = http("POST", f"{self.api}/v1/webhooks/stripe/{self.merchant['id']}", body,
                              {"Content-Type": "application/json", "Stripe-Signature": f"t={t},v1={sig}"})
        return status, json.loads(raw or b"null")

    def invoice(self, paid: bool) -> dict:
        return {"id": INVOICE, "object": "invoice", "customer": self.customer["id"],
                "customer_email": self.addr,
                "customer_name": f"{self.customer['first_name']} {self.customer.get('last_name', '')}".strip(),
                "amount_due": PRICE, "amount_paid": PRICE if paid else 0, "currency": "eur",
                "subscription": SUBSCRIPTION,
                "hosted_invoice_url": f"https://billing.acme-outdoor.example/pay/{INVOICE}",
                "lines": {"data": [{"description": "Gear care club"}]}}

    def run(self) -> None:
        self.seen = len(self.emails())
        renewal = first_local_hour(self.virtual_now + timedelta(days=10), self.tz, LOCAL_HOUR)
        sub = {"customer": {k: self.customer[k] for k in ("id", "email", "first_name", "last_name", "locale", "time_zone")},
               "plan_name": "Gear care club", "interval": "monthly", "price": PRICE, "currency": "EUR",
               "status": "active", "next_renewal_at": iso(renewal),
               "payment_method": {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": renewal.year + 2},
               "updated_at": iso(self.virtual_now)}
        url = f"{self.api}/v1/subscriptions/{SUBSCRIPTION}"
        status, body = api_json("PUT", url, self.key, sub)
        if status != 201:
            fail(f"PUT {url}: {status} {body}")
        notices = ", ".join(f"{n['kind']} {n['at']}" for n in body["notices"])
        print(f"→ PUT /v1/subscriptions/{SUBSCRIPTION}: {status}, renews {renewal.astimezone(self.tz):%a %Y-%m-%d}; "
              f"notices: {notices}")
        status, body = api_json("PUT", url, self.key, sub)
        if status != 200 or body.get("result") != "unchanged":
            fail(f"the same subscription again: {status} {body.get('result')}")
        print(f"→ the same body again: {status} {body['result']}")

        # Renewal − 7 days: the daily sweep sends the reminder, once.
        self.at(first_local_hour(renewal - timedelta(days=7), self.tz, LOCAL_HOUR), "renewal reminder due")
        report = self.invoke_schedule("renewal-checker")
        print(f"→ renewal-checker sweep: {report['due']} due ({report['items_read']} index items read), "
              f"{report['sent']} sent")
        reminder = self.expect_emails([("renewal_reminder", self.addr)])[0]
        again = self.invoke_schedule("renewal-checker")
        self.expect_emails([])
        print(f"→ rerun: {again['due']} due, {again['sent']} sent (nothing twice)")

        text = reminder.get_body(preferencelist=("plain",)).get_content()
        manage = next((u for u in urllib.parse.unquote(text).split() if "/v1/subscription-links/" in u), None)
        if manage is None:
            fail("the renewal reminder has no signed manage link")
        status, headers, _ = http("GET", manage.strip("<>()"))
        if status != 200:
            fail(f"GET the manage link: {status} (expected the hosted page after the redirect)")
        print(f"→ the reminder's manage link: recorded, published as “Subscription Link Clicked”, "
              f"the hosted page answers {status}")

        # Renewal day: the charge fails.
        failed_at = renewal + timedelta(hours=1)
        self.at(failed_at, "renewal charge")
        status, body = self.stripe("evt_demo_failed_1", "invoice.payment_failed", self.invoice(paid=False))
        if status != 200:
            fail(f"Stripe invoice.payment_failed: {status} {body}")
        print(f"→ Stripe invoice.payment_failed: {status} {body.get('result')}")
        self.expect_emails([("payment_failed", self.addr)])
        status, body = self.stripe("evt_demo_failed_1", "invoice.payment_failed", self.invoice(paid=False))
        if status != 200:
            fail(f"the replayed Stripe event: {status} {body}")
        self.expect_emails([])
        print(f"→ Stripe redelivers the same event: {status} {body.get('result')}, nothing sent")

        # Day 3: the reminder.
        # The failure was stored at the second the webhook arrived (a fraction after `failed_at`).
        self.at(failed_at + timedelta(days=3, minutes=5), "the hourly dunning sweep, 3 days after the failure")
        report = self.invoke_schedule("billing-alert")
        print(f"→ billing-alert sweep: {report['due']} due, {report['reminders_sent']} reminder(s) sent")
        self.expect_emails([("payment_failed", self.addr)])

        # Day 4: the customer updates the card and Stripe's retry succeeds.
        self.at(first_local_hour(renewal + timedelta(days=4), self.tz, LOCAL_HOUR), "the retry succeeds")
        status, body = self.stripe("evt_demo_paid_1", "invoice.paid", self.invoice(paid=True))
        if status != 200:
            fail(f"Stripe invoice.paid: {status} {body}")
        print(f"→ Stripe invoice.paid: {status} {body.get('result')}")
        self.expect_emails([("payment_recovered", self.addr)])
        later = self.invoke_schedule("billing-alert")
        self.expect_emails([])
        print(f"→ billing-alert sweep: {later['due']} due, nothing more (dunning stopped)")

        q = urllib.parse.urlencode({"from": iso(renewal - timedelta(days=1)), "to": iso(renewal + timedelta(days=1))})
        status, rec = api_json("GET", f"{self.api}/v1/billing/recovery?{q}", self.key)
        if status != 200:
            fail(f"GET /v1/billing/recovery: {status} {rec}")
        amounts = ", ".join(f"{a['amount'] / 100:.2f} {a['currency']}" for a in rec["recovered_amount"])
        print(f"→ GET /v1/billing/recovery: {rec['failed_invoices']} failed invoice(s), {rec['recovered']} recovered "
              f"({amounts}), "
              f"rate {rec['recovery_rate']}; emails {rec['emails_sent']}")
        if rec["failed_invoices"] != 1 or rec["recovered"] != 1:
            fail(f"unexpected recovery report: {rec}")


def main() -> int:
    api, moto, key, clock_file, merchant_json, order_json = sys.argv[1:7]
    with open(merchant_json) as f:
        merchant = json.load(f)
    with open(order_json) as f:
        order = json.load(f)
    Billing(api, moto, key, clock_file, merchant, order).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
