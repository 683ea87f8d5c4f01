"""The returns part of the local demo, on the detractor's order (demo_followups.ORDER, SO-1001: its
customer answers the survey 3/10; were there no detractor in the demo, SO-1001 would be used all the
same): the customer follows "Start a return" from the delivered order's tracking page (the link the
delivered email carries too) and asks for one unit back as store credit; the merchant and the
carrier take it from there to the credit email.

Over HTTP the portal answers 200 with its form, a tampered link 400 with the error page, and the
form sent twice (the same one-time key) answers the same return. With AFTERCARE_DEMO_BROWSER=chromium
the portal is instead driven in headless Chromium at 1280 and 375 px (scripts/browser_returns.py: not
blank, nothing wider than the viewport, the form and the policy there, then one unit of the first
returnable line asked back as store credit and the confirmation checked) and saved as
OUTDIR/returns-page.png.

Then, either way: the merchant approves the return through the API unless the policy approved it at
once (`POST /v1/returns/{id}/approve`), records its parcel (`POST /v1/returns/{id}/parcel`); the
carrier's delivery scan of that parcel arrives as EasyPost's signed `tracker.updated` webhook and
receives the return (`GET /v1/returns/{id}`: `received`, by `carrier`); the merchant resolves it
(`POST /v1/returns/{id}/resolve`), and the emails SES accepted (what the demo writes to OUTDIR) hold
exactly one "return received" and one "store credit issued" for the customer, the latter with the
credit, the policy's bonus and the balance `GET /v1/customers/{customerId}/credit` shows. Last, the
merchant's returns report (`GET /v1/returns/analytics`) gives the returned SKU's return rate: its
units back over the units the demo's orders sold.

A merchant without a return policy has no "Start a return" link: the step says so and checks nothing.

Usage: demo_returns.py API API_KEY OUTDIR MERCHANT_ID MERCHANT_JSON MOTO_ENDPOINT
       demo_returns.py --outbox OUTDIR MERCHANT_JSON   (after the demo wrote OUTDIR: the same emails there)
"""

from __future__ import annotations

import email
import glob
import hashlib
import hmac
import html
import json
import os
import re
import shutil
import sys
import unicodedata
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from email import policy as email_policy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from demo_followups import ORDER, api_json, fail  # noqa: E402
from demo_tracking import get  # noqa: E402
import browser_returns  # noqa: E402

# The return parcel the customer drops at a DHL point, and its carrier's code at EasyPost.
RETURN_TRACKING_NUMBER = "JJD000390099001"
RETURN_CARRIER = "DHL"
# The lines of the store credit email (English, the demo customer's language) and what they hold.
CREDIT_LABELS = {"Credit": "amount", "Bonus": "bonus", "Your new balance": "balance"}


def tracking_page_of(order: dict) -> str | None:
    """The tracking page link of `order`'s (GET /v1/orders/{id}) first delivered shipment."""
    for s in order.get("shipments", []):
        if s.get("delivered_at") and s.get("tracking_page_url"):
            return s["tracking_page_url"]
    return None


def portal_return(listing: dict, order: str) -> dict | None:
    """The one return asked for on the portal for `order` in a `GET /v1/returns` answer (None: not
    exactly one)."""
    found = [r for r in listing.get("returns", []) if r.get("order_id") == order and r.get("source") == "portal"]
    return found[0] if len(found) == 1 else None


def moved_by(record: dict, status: str) -> list[str]:
    """Who moved `record` (a return as the API shows it) to `status`, oldest first."""
    return [h.get("by", "") for h in record.get("history", []) if h.get("status") == status]


def minor_units(shown: str) -> int:
    """An amount as an email shows it (`€1,234.50`) in minor units (123450)."""
    digits = re.sub(r"\D", "", shown)
    return int(digits) if digits else 0


def credit_shown(text: str) -> dict[str, int]:
    """The credit, bonus and balance the plain text of a store credit email shows, in minor units."""
    shown = {}
    for line in text.splitlines():
        label, sep, value = line.partition(": ")
        if sep and label.strip() in CREDIT_LABELS:
            shown[CREDIT_LABELS[label.strip()]] = minor_units(value)
    return shown


def bonus_of(amount: int, percent: int) -> int:
    """The policy's bonus on `amount` minor units, rounded half up as the credit ledger does."""
    return (amount * percent + 50) // 100


def easypost_delivered(event_id: str, tracking_code: str, carrier: str, at: datetime) -> dict:
    """EasyPost's `tracker.updated` Event of a parcel delivered at `at` (UTC)."""
    when = at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    detail = {"object": "TrackingDetail", "message": "Delivered to the sender", "description": "Delivered to the sender",
              "status": "delivered", "status_detail": "arrived_at_destination", "datetime": when,
              "source": carrier, "tracking_location": {"object": "TrackingLocation", "city": "Großbeeren",
                                                        "state": None, "country": "DE", "zip": "14979"}}
    return {"id": event_id, "object": "Event", "description": "tracker.updated", "mode": "test",
            "previous_attributes": {"status": "in_transit"}, "pending_urls": [], "completed_urls": [],
            "created_at": when, "updated_at": when,
            "result": {"id": f"trk_{event_id}", "object": "Tracker", "mode": "test", "tracking_code": tracking_code,
                       "carrier": carrier, "status": "delivered", "status_detail": "arrived_at_destination",
                       "signed_by": None, "est_delivery_date": when, "updated_at": when,
                       "tracking_details": [detail]}}


def easypost_signature(secret: str, raw: bytes) -> str:
    """EasyPost's `X-Hmac-Signature`: hex HMAC-SHA256 of the raw body keyed with the NFKD secret."""
    key = unicodedata.normalize("NFKD", secret).encode()
    return "hmac-sha256-hex=" + hmac.new(key, raw, hashlib.sha256).hexdigest()


def kind_of(msg) -> str:
    return str(msg.get("X-Aftercare-Kind", ""))


def to_of(msg) -> str:
    return msg["To"].addresses[0].addr_spec if msg["To"] and msg["To"].addresses else ""


def plain_text(msg) -> str:
    part = msg.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else ""


def outbox_emails(outdir: str) -> list:
    """The emails the demo wrote to OUTDIR (NNN-kind.eml)."""
    out = []
    for path in sorted(glob.glob(os.path.join(outdir, "*.eml"))):
        with open(path) as f:
            out.append(email.message_from_string(f.read(), policy=email_policy.default))
    return out


def ses_emails(moto: str) -> list:
    """Every email SES (moto) accepted so far: what the demo writes to OUTDIR at its end."""
    with urllib.request.urlopen(moto.rstrip("/") + "/moto-api/data.json", timeout=30) as r:
        data = json.load(r)
    return [email.message_from_string(m["raw_data"], policy=email_policy.default)
            for m in data.get("ses", {}).get("RawMessage", [])]


def credit_email_problems(messages: list, address: str, percent: int) -> tuple[list[str], dict[str, int]]:
    """What is wrong with the return emails to `address` among `messages`: exactly one
    `return_received` and one `store_credit_issued` showing the credit, the bonus of `percent` % on
    it and the balance; and the figures that email shows."""
    mine = [m for m in messages if to_of(m) == address]
    received = [m for m in mine if kind_of(m) == "return_received"]
    credit = [m for m in mine if kind_of(m) == "store_credit_issued"]
    problems = []
    if len(received) != 1:
        problems.append(f"{len(received)} return_received email(s) to {address}, not 1")
    if len(credit) != 1:
        problems.append(f"{len(credit)} store_credit_issued email(s) to {address}, not 1")
        return problems, {}
    shown = credit_shown(plain_text(credit[0]))
    missing = [k for k in ("amount", "bonus", "balance") if not shown.get(k)]
    if missing:
        problems.append(f"the store credit email does not show its {', '.join(missing)}")
    elif shown["bonus"] != bonus_of(shown["amount"], percent):
        problems.append(f"the store credit email shows a bonus of {shown['bonus']} on {shown['amount']}, "
                        f"not {percent} %")
    return problems, shown


def start_return_link(tracking_page: str) -> str | None:
    """The "Start a return" link of a tracking page (none: the merchant takes no returns online)."""
    m = re.search(r'id="start-return">[^<]*<a href="([^"]+)"', tracking_page)
    return html.unescape(m.group(1)) if m else None


def form_of(portal: str) -> dict[str, str] | None:
    """What a customer sends from `portal`'s HTML: its key, one unit of the first line that may come
    back with the first reason offered, and store credit (or the first resolution offered); None when
    nothing may come back."""
    key = re.search(r'name="key" value="([^"]*)"', portal)
    lines = []
    for index, options in re.findall(r'<select id="qty-(\d+)" name="qty-\d+">(.*?)</select>', portal, re.S):
        values = [int(v) for v in re.findall(r'<option value="(\d+)"', options)]
        lines.append((int(index), max(values, default=0)))
    line = browser_returns.pick_line(lines)
    resolution = browser_returns.pick_resolution(re.findall(r'name="resolution" value="([a-z_]+)"', portal))
    if key is None or line is None or resolution is None:
        return None
    reasons = re.search(rf'<select id="reason-{line}" name="reason-{line}">(.*?)</select>', portal, re.S)
    offered = [v for v in re.findall(r'<option value="([^"]*)"', reasons.group(1) if reasons else "") if v]
    if not offered:
        return None
    return {"key": html.unescape(key.group(1)), f"qty-{line}": "1", f"reason-{line}": offered[0],
            "resolution": resolution, "comment": ""}


def post_form(url: str, form: dict[str, str]) -> tuple[int, str]:
    body = urllib.parse.urlencode(form).encode()
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def return_number(done: str) -> str | None:
    """The number a confirmation page shows (none: not a confirmation)."""
    m = re.search(r'id="return-number">([^<]+)<', done)
    return html.unescape(m.group(1)) if m else None


def ask_for_return(api: str, key: str, outdir: str, url: str) -> None:
    """The customer asks for one unit back as store credit on the portal at `url` (the browser run
    or by HTTP); the portal's own checks on the way."""
    status, portal = get(url)
    if status != 200 or 'id="return-form"' not in portal:
        fail(f"the return portal answered {status} without its form")
    print(f"→ {status} the return portal of {ORDER}: {url[:60]}…")
    tampered = browser_returns.tamper(url)
    status, page = get(tampered)
    if status != 400 or 'id="error"' not in page:
        fail(f"a tampered return link answered {status}")
    print(f"→ {status} a tampered link: the error page")

    if os.environ.get("AFTERCARE_DEMO_BROWSER") == "chromium":
        name = ORDER.lower()
        problems, shots = browser_returns.check_portals([(name, url)], tampered, outdir)
        for p in problems:
            print(f"FAIL {p}", file=sys.stderr)
        if problems:
            fail(f"{len(problems)} problem(s) with the return portal in headless Chromium")
        shutil.copyfile(browser_returns.screenshot_path(outdir, name, "desktop"),
                        os.path.join(outdir, "returns-page.png"))
        print(f"→ the return portal at 1280 and 375 px in headless Chromium, a return asked for as store credit "
              f"and confirmed; {len(shots)} screenshots; {outdir}/returns-page.png")
        return
    form = form_of(portal)
    if form is None:
        fail("the return portal offers nothing to return")
    if form["resolution"] != "store_credit":
        fail(f"the return portal offers no store credit (only {form['resolution']} chosen)")
    answers = [post_form(url, form) for _ in range(2)]
    numbers = {return_number(body) for _, body in answers}
    if any(s != 200 for s, _ in answers) or len(numbers) != 1 or None in numbers:
        fail(f"the return form answered {[s for s, _ in answers]} with returns {numbers}")
    print(f"→ 200 return {numbers.pop()} asked for as store credit; the same form sent again answers the same return")


def call(method: str, url: str, key: str, body=None, wanted: int = 200) -> dict:
    status, answer = api_json(method, url, key, body)
    if status != wanted:
        fail(f"{method} {url}: {status} {answer}")
    return answer


def the_return_comes_back(api: str, key: str, merchant_id: str, merchant: dict, moto: str, address: str) -> None:
    """From the asked-for return to the credit email: approval, the parcel, the carrier's scan,
    resolution; the emails and the balance checked."""
    listing = call("GET", f"{api}/v1/returns", key)
    record = portal_return(listing, ORDER)
    if record is None:
        fail(f"GET /v1/returns does not list one portal return of {ORDER}: {listing.get('returns')}")
    rid = record["id"]
    if record["resolution"] != "store_credit":
        fail(f"return {record['number']} is for {record['resolution']}, not store credit")
    print(f"→ 200 GET /v1/returns: {record['number']} for {ORDER}, {record['status']}, store credit worth "
          f"{record['amounts'].get('credit', 0) / 100:.2f} {record['currency']}")
    if record["status"] == "requested":
        record = call("POST", f"{api}/v1/returns/{rid}/approve", key)
        print(f"→ 200 POST /v1/returns/{rid}/approve: {record['status']}, email {record.get('email', '—')}")
    elif moved_by(record, "approved") == ["policy"]:
        print("→ approved at once by the policy (auto-approval): no merchant action")
    if record["status"] != "approved":
        fail(f"return {rid} is {record['status']}, not approved")

    record = call("POST", f"{api}/v1/returns/{rid}/parcel", key,
                  {"tracking_number": RETURN_TRACKING_NUMBER, "carrier": RETURN_CARRIER})
    if (record.get("parcel") or {}).get("tracking_number") != RETURN_TRACKING_NUMBER:
        fail(f"the return parcel was not recorded: {record.get('parcel')}")
    print(f"→ 200 POST /v1/returns/{rid}/parcel: {RETURN_CARRIER} {RETURN_TRACKING_NUMBER}")

    secret = merchant["connectors"]["easypost"]["secrets"][0]
    event = easypost_delivered("evt_demo_return_1001", RETURN_TRACKING_NUMBER, "DHLExpress", datetime.now(timezone.utc))
    raw = json.dumps(event).encode()
    status, _, answer = http_post(f"{api}/v1/connectors/easypost/{merchant_id}", raw,
                                  {"Content-Type": "application/json", "X-Hmac-Signature": easypost_signature(secret, raw)})
    scan = json.loads(answer or b"{}")
    if status != 200 or scan.get("result") != "applied" or scan.get("status") != "received":
        fail(f"the return parcel's delivery scan was not applied: {status} {scan}")
    print(f"→ 200 the parcel's delivery scan (EasyPost tracker.updated, signed): {scan['result']}, "
          f"return {scan['status']}, email {scan.get('email')}")

    record = call("GET", f"{api}/v1/returns/{rid}", key)
    if record["status"] != "received" or moved_by(record, "received") != ["carrier"]:
        fail(f"GET /v1/returns/{rid}: {record['status']}, received by {moved_by(record, 'received')}")
    print(f"→ 200 GET /v1/returns/{rid}: received, by carrier")

    record = call("POST", f"{api}/v1/returns/{rid}/resolve", key)
    credit = record.get("credit") or {}
    if record["status"] != "resolved" or not credit.get("amount"):
        fail(f"POST /v1/returns/{rid}/resolve: {record['status']}, credit {credit}")
    print(f"→ 200 POST /v1/returns/{rid}/resolve: resolved, credit {credit['amount']} + bonus {credit['bonus']}, "
          f"balance {credit['balance']} (minor units), email {record.get('email', '—')}")

    percent = merchant["settings"]["returns"].get("credit_bonus_percent", 0)
    problems, shown = credit_email_problems(ses_emails(moto), address, percent)
    if problems:
        fail("; ".join(problems))
    wanted = {k: credit[k] for k in ("amount", "bonus", "balance")}
    if shown != wanted:
        fail(f"the store credit email shows {shown}, the return {wanted}")
    print(f"→ emails to {address}: one return_received, one store_credit_issued showing the credit, "
          f"the {percent} % bonus and the balance {shown['balance'] / 100:.2f}")

    statement = call("GET", f"{api}/v1/customers/{record['customer_id']}/credit", key)
    balances = {b["currency"]: b["balance"] for b in statement.get("balances", [])}
    if balances.get(record["currency"]) != credit["balance"]:
        fail(f"GET /v1/customers/{record['customer_id']}/credit: balances {balances}, not {credit['balance']}")
    print(f"→ 200 GET /v1/customers/{record['customer_id']}/credit: balance {credit['balance'] / 100:.2f} "
          f"{record['currency']}")


def sku_rates(report: dict) -> dict[str, tuple[int, int, float | None]]:
    """Each SKU's units returned, units sold and return rate in a `GET /v1/returns/analytics`
    answer (every currency together)."""
    return {row["sku"]: (row["units"], row.get("units_sold", 0), row.get("return_rate"))
            for currency in report.get("currencies", []) for row in currency.get("by_sku", [])}


def return_rate_problems(rates: dict[str, tuple[int, int, float | None]]) -> list[str]:
    """What is wrong with the return rates of an analytics answer: a returned SKU counted as never
    sold, or a rate that is not its units back over its units sold."""
    problems = []
    for sku, (back, sold, rate) in sorted(rates.items()):
        if sold == 0 or rate is None:
            problems.append(f"{sku}: {back} back, but none counted sold")
        elif abs(rate - round(back / sold, 4)) > 1e-9:
            problems.append(f"{sku}: rate {rate}, not {back}/{sold}")
    return problems


def return_rate_shown(api: str, key: str, since: str) -> None:
    """The merchant's returns report since the order was placed: the returned SKU's rate against the
    units the demo's orders sold."""
    report = call("GET", f"{api}/v1/returns/analytics?from={since}", key)
    rates = sku_rates(report)
    problems = return_rate_problems(rates)
    if not rates or problems:
        fail(f"GET /v1/returns/analytics?from={since}: {'; '.join(problems) or 'no SKU came back'}")
    shown = ", ".join(f"{sku} {back} back of {sold} sold ({rate:.0%})" for sku, (back, sold, rate) in sorted(rates.items()))
    print(f"→ 200 GET /v1/returns/analytics?from={since}: {shown}; kept as credit or exchange "
          f"{report['currencies'][0]['kept_share']:.0%} of the value")


def http_post(url: str, body: bytes, headers: dict) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def check_outbox(outdir: str, merchant_json: str) -> None:
    """The return emails among those written to `outdir`, once more."""
    with open(merchant_json) as f:
        percent = json.load(f)["settings"]["returns"].get("credit_bonus_percent", 0)
    messages = outbox_emails(outdir)
    credit = [m for m in messages if kind_of(m) == "store_credit_issued"]
    if len(credit) != 1:
        fail(f"{outdir}/ holds {len(credit)} store_credit_issued email(s), not 1")
    address = to_of(credit[0])
    problems, shown = credit_email_problems(messages, address, percent)
    if problems:
        fail("; ".join(problems))
    print(f"→ {outdir}/: one return_received and one store_credit_issued to {address} "
          f"(credit {shown['amount'] / 100:.2f}, bonus {shown['bonus'] / 100:.2f}, balance {shown['balance'] / 100:.2f})")


def main() -> None:
    if sys.argv[1:2] == ["--outbox"]:
        check_outbox(sys.argv[2], sys.argv[3])
        return
    api, key, outdir, merchant_id, merchant_json, moto = sys.argv[1:7]
    with open(merchant_json) as f:
        merchant = json.load(f)
    order = call("GET", f"{api}/v1/orders/{ORDER}", key)
    link = tracking_page_of(order)
    if link is None:
        fail(f"GET /v1/orders/{ORDER} has no delivered shipment with a tracking page")
    status, tracking = get(link)
    url = start_return_link(tracking) if status == 200 else None
    if url is None:
        print("(the merchant's return policy is off: no return portal to check)")
        return
    ask_for_return(api, key, outdir, url)
    the_return_comes_back(api, key, merchant_id, merchant, moto, order["order"]["customer"]["email"])
    return_rate_shown(api, key, order["order"]["placed_at"][:10])


if __name__ == "__main__":
    main()
