"""The shipping part of the local demo: ship SO-1001, track it to delivery (the last scan through
EasyPost's signed tracker webhook, as a merchant's tracking provider sends it), read the order back, and let a second shipment run late so the scheduled
sweep sends the "running late" email and the merchant alert. scripts/demo_followups.py goes on from
here through the days after delivery.

Usage: demo_journey.py API_BASE API_KEY MERCHANT_ID EASYPOST_WEBHOOK_SECRET
"""

import hashlib
import hmac
import json
import sys
import unicodedata
import urllib.error
import urllib.request
from datetime import date, timedelta


def call(method, url, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def expect(status, body, wanted, what):
    if status not in wanted:
        sys.exit(f"{what}: expected {wanted}, got {status}: {json.dumps(body)}")


def main():
    api, key, merchant, secret = sys.argv[1:5]
    auth = {"Authorization": f"Bearer {key}"}

    status, body = call("POST", f"{api}/v1/orders/SO-1001/shipments", {
        "id": "SH-1001-1", "carrier": "DHL", "tracking_number": "JJD000390007788",
        "tracking_url": "https://track.example/JJD000390007788",
        "items": [{"sku": "TENT-2P", "quantity": 1}, {"sku": "PEG-AL-10", "quantity": 2}],
        "promised_date": (date.today() + timedelta(days=3)).isoformat(),
    }, auth)
    expect(status, body, (201,), "create shipment")
    print(f"→ {status} shipment SH-1001-1 created, email: {body['email']['status']}")

    today = date.today().isoformat()
    for st, at in [("in_transit", f"{today}T06:10:00Z"), ("out_for_delivery", f"{today}T07:45:00Z")]:
        status, body = call("POST", f"{api}/v1/shipments/SH-1001-1/events", {"status": st, "occurred_at": at, "location": "Berlin"}, auth)
        expect(status, body, (200,), st)
        print(f"→ {status} {st}: {body['result']}, email: {body.get('email', '—')}")

    # The delivery scan arrives from the merchant's tracking provider: EasyPost's tracker.updated
    # Event, its whole history included, signed as EasyPost signs (hex HMAC-SHA256 of the raw body
    # keyed with the NFKD form of the webhook secret). Only what the shipment lacks is recorded.
    detail = lambda status, at, city, msg: {"object": "TrackingDetail", "message": msg, "description": msg,
        "status": status, "status_detail": None, "datetime": at, "source": "DHLExpress",
        "tracking_location": {"object": "TrackingLocation", "city": city, "state": None, "country": "DE", "zip": None}}
    event = {"id": "evt_demo_4411", "object": "Event", "description": "tracker.updated", "mode": "test",
             "previous_attributes": {"status": "out_for_delivery"}, "pending_urls": [], "completed_urls": [],
             "created_at": f"{today}T13:06:00.000Z", "updated_at": f"{today}T13:06:00.000Z",
             "result": {"id": "trk_demo_1001", "object": "Tracker", "mode": "test",
                        "tracking_code": "JJD000390007788", "carrier": "DHLExpress", "status": "delivered",
                        "status_detail": "arrived_at_destination", "signed_by": None,
                        "est_delivery_date": f"{today}T00:00:00Z", "updated_at": f"{today}T13:05:30Z",
                        "tracking_details": [
                            detail("in_transit", f"{today}T06:10:00Z", "Berlin", "Arrived at the delivery base"),
                            detail("delivered", f"{today}T13:05:00Z", "Berlin", "Delivered at the front door"),
                        ]}}
    raw = json.dumps(event).encode()
    key_bytes = unicodedata.normalize("NFKD", secret).encode()
    sig = "hmac-sha256-hex=" + hmac.new(key_bytes, raw, hashlib.sha256).hexdigest()
    req = urllib.request.Request(f"{api}/v1/connectors/easypost/{merchant}", data=raw, method="POST",
                                 headers={"Content-Type": "application/json", "X-Hmac-Signature": sig})
    with urllib.request.urlopen(req) as r:
        body = json.load(r)
    recorded = body.get("checkpoints", [])
    delivered = [c for c in recorded if c.get("status") == "delivered"]
    if body.get("result") != "applied" or body.get("status") != "delivered" or not delivered:
        sys.exit(f"EasyPost's delivery was not applied: {json.dumps(body)}")
    print(f"→ 200 delivered (EasyPost tracker.updated, signed): {body['result']}, "
          f"{len(recorded)} new checkpoint(s) of {len(event['result']['tracking_details'])}, "
          f"email: {delivered[0].get('email')}, order delivered: {delivered[0].get('order_delivered')}")
    # EasyPost's retry of the same Event (its answer got lost): a duplicate, no email.
    with urllib.request.urlopen(req) as r:
        again = json.load(r)
    if again.get("result") != "duplicate" or again.get("checkpoints"):
        sys.exit(f"the redelivered webhook was not a quiet duplicate: {again}")
    print(f"→ 200 the same signed Event redelivered: {again['result']}, nothing sent")

    status, body = call("GET", f"{api}/v1/orders/SO-1001", headers=auth)
    expect(status, body, (200,), "read order")
    print(f"→ {status} GET /v1/orders/SO-1001: status {body['status']}, "
          f"{len(body['shipments'][0]['history'])} tracking events, follow-ups scheduled:")
    for f in body["follow_ups"]:
        print(f"     {f['due_at']}  {f['kind']}")

    # A second shipment promised for yesterday and never out for delivery: the sweep finds it late.
    status, body = call("POST", f"{api}/v1/orders/SO-1002/shipments", {
        "id": "SH-1002-1", "carrier": "GLS", "tracking_number": "GLS7788990011",
        "items": [{"sku": "TENT-2P", "quantity": 1}], "promised_date": (date.today() - timedelta(days=1)).isoformat(),
    }, auth)
    expect(status, body, (201,), "create late shipment")
    print(f"→ {status} shipment SH-1002-1 (promised yesterday) created, email: {body['email']['status']}")
    entry = {"Source": "aws.events", "DetailType": "Scheduled Event", "Detail": "{}"}
    status, body = call("POST", f"{api}/_local/events", {"Entries": [entry]})
    expect(status, body, (200,), "scheduled event")
    # The schedule reaches every function with a Schedule event (shipment-update, survey-sender).
    results = {r["function"]: r for r in body["Results"]}
    failed = [name for name, r in results.items() if not r["ok"]]
    if failed or "shipment-update" not in results:
        sys.exit(f"scheduled sweep: {json.dumps(body['Results'])}")
    report = results["shipment-update"]["response"]
    print(f"→ scheduled sweep: {report['due']} due, {report['late_notices']} late notice(s) with merchant alert")
    if report["late_notices"] != 1:
        sys.exit(f"scheduled sweep: expected 1 late notice: {json.dumps(report)}")
    if "survey-sender" in results:
        r = results["survey-sender"]["response"]
        print(f"→ the same schedule's follow-up sweep: {r['due']} due, {r['sent']} sent (nothing is due yet)")
        if r["sent"]:
            sys.exit(f"the follow-up sweep sent something before any follow-up was due: {json.dumps(r)}")


if __name__ == "__main__":
    main()
