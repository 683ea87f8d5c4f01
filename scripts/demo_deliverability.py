"""The deliverability part of the local demo: Jonas's address stops existing.

  1. SES reports a permanent bounce of the thank-you for SO-1002: an "Email Bounced" event in the
     shape SES publishes to EventBridge (its headers are those of the message moto accepted),
     delivered to email-events as the default bus's rule would; a redelivery changes nothing
  2. GET /v1/suppressions/{email} → suppressed, with reason and time
  3. Jonas orders again (SO-1003): the order and his points are stored, the thank-you is recorded as
     suppressed and never reaches SES
  4. GET /v1/customers/{id}/messages and /explain say what went and why the last one did not
  5. GET /v1/analytics/email → the day's bounce rate
  6. Jonas fixes his mailbox; the merchant lifts the suppression (DELETE), and the next order is
     thanked again

Usage: demo_deliverability.py API_BASE MOTO_ENDPOINT API_KEY MERCHANT_ID ORDER_JSON
"""

from __future__ import annotations

import copy
import email
import json
import sys
import urllib.parse
from datetime import datetime, timedelta, timezone
from email import policy

from demo_followups import api_json, fail, http

CUSTOMER = "cust-5150"
ADDRESS = "jonas.weber@example.de"


def ses_messages(moto: str, to: str) -> list[dict]:
    status, _, raw = http("GET", f"{moto}/_test/emails?to={urllib.parse.quote(to)}")
    if status != 200:
        fail(f"the test server's email list answered {status}")
    return json.loads(raw)


def ses_event(message: dict, merchant_id: str, detail_type: str, event_type: str, body: dict) -> dict:
    """The EventBridge event SES publishes about `message` (its headers are the message's own)."""
    mime = email.message_from_string(message["raw_data"], policy=policy.default)
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    headers = [{"name": k, "value": str(v)} for k, v in mime.items()]
    detail = {
        "eventType": event_type,
        "mail": {
            "timestamp": now, "source": message["source"], "messageId": message["id"],
            "destination": message["destinations"], "headersTruncated": False, "headers": headers,
            "commonHeaders": {"from": [str(mime["From"])], "to": [str(mime["To"])], "subject": str(mime["Subject"]),
                              "messageId": message["id"]},
            "tags": {"kind": [str(mime["X-Aftercare-Kind"])], "merchant": [merchant_id]},
        },
        event_type.lower(): {**body, "timestamp": now} if body else {},
    }
    return {"version": "0", "id": f"demo-{event_type.lower()}-{message['id']}", "detail-type": detail_type,
            "source": "aws.ses", "account": "123456789012", "time": now[:19] + "Z", "region": "us-east-1",
            "resources": [], "detail": detail}


def bounce_event(message: dict, merchant_id: str) -> dict:
    """SES's "Email Bounced" for `message`: a permanent 5.1.1."""
    return ses_event(message, merchant_id, "Email Bounced", "Bounce", {
        "feedbackId": f"demo-{message['id']}", "bounceType": "Permanent", "bounceSubType": "General",
        "bouncedRecipients": [{"emailAddress": ADDRESS, "action": "failed", "status": "5.1.1",
                               "diagnosticCode": "smtp; 550 5.1.1 user unknown"}],
        "reportingMTA": "dsn; a8-50.smtp-out.amazonses.com",
    })


def deliver(api: str, envelope: dict) -> dict:
    """EventBridge delivers `envelope` to email-events (SES publishes to the default bus; the
    emulator invokes the function as the bus's rule would, the same envelope on a redelivery)."""
    status, out = api_json("POST", f"{api}/_local/invoke/email-events", body=envelope)
    if status != 200 or not isinstance(out, dict):
        fail(f"the bounce event was not handled: {status} {out}")
    return out


def order(api: str, key: str, template: dict, order_id: str) -> dict:
    body = copy.deepcopy(template)
    body.update(id=order_id, placed_at=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    body["customer"].update(id=CUSTOMER, email=ADDRESS, first_name="Jonas", last_name="Weber",
                            locale="de-DE", time_zone="Europe/Berlin")
    status, out = api_json("POST", f"{api}/v1/orders", key, body)
    if status != 201:
        fail(f"POST /v1/orders {order_id}: {status} {out}")
    return out


def main() -> None:
    api, moto, key, merchant_id, order_path = sys.argv[1:6]
    api = api.rstrip("/")
    template = json.load(open(order_path))
    mailbox = urllib.parse.quote(ADDRESS, safe="")

    thanks = [m for m in ses_messages(moto, ADDRESS) if "SO-1002" in m["raw_data"]]
    if not thanks:
        fail("no thank-you for SO-1002 reached SES")
    sent = deliver(api, ses_event(thanks[0], merchant_id, "Email Sent", "Send", {}))
    if sent.get("result") != "recorded":
        fail(f"the send event was not recorded: {sent}")
    envelope = bounce_event(thanks[0], merchant_id)
    first = deliver(api, envelope)
    again = deliver(api, envelope)
    if first.get("result") != "recorded" or again.get("result") != "duplicate":
        fail(f"the bounce was not recorded once: {first} then {again}")
    print(f"  SES: the thank-you for SO-1002 was sent, then bounced (5.1.1) → email-events: {first['result']}, "
          f"suppressed {[s['email'] for s in first['suppressed']]}; EventBridge redelivers it → {again['result']}")

    status, s = api_json("GET", f"{api}/v1/suppressions/{mailbox}", key)
    if status != 200:
        fail(f"GET /v1/suppressions: {status} {s}")
    print(f"  GET /v1/suppressions/{ADDRESS} → {s.get('reason')} since {s.get('suppressed_at')}")

    out = order(api, key, template, "SO-1003")
    if out["email"]["status"] != "suppressed":
        fail(f"the thank-you for SO-1003 went out: {out['email']}")
    before = len(ses_messages(moto, ADDRESS))
    print(f"  POST /v1/orders SO-1003 → stored, +{out['loyalty']['points_earned']} points, "
          f"thank-you: {out['email']['status']} (nothing reached SES)")

    status, log = api_json("GET", f"{api}/v1/customers/{CUSTOMER}/messages", key)
    if status != 200:
        fail(f"GET messages: {status} {log}")
    for m in log["messages"]:
        print(f"    {m['kind']:<16} {m['subject']:<8} {m['state']:<11} {m.get('reason') or ''}")
    states = {(m["kind"], m["subject"]): m["state"] for m in log["messages"]}
    if states.get(("order_thanks", "SO-1002")) != "bounced" or states.get(("order_thanks", "SO-1003")) != "skipped":
        fail(f"the message log does not show the bounce and the suppression: {states}")

    status, why = api_json("GET", f"{api}/v1/customers/{CUSTOMER}/explain?kind=order_thanks&order=SO-1003", key)
    if status != 200 or (why.get("result"), why.get("reason")) != ("skipped", "suppressed"):
        fail(f"explain: {status} {why}")
    print(f"  GET …/explain?kind=order_thanks&order=SO-1003 → {why['result']} ({why['reason']}): "
          + " → ".join(step["step"] for step in why["trace"]))

    since = datetime.now(timezone.utc).date() - timedelta(days=1)
    status, stats = api_json("GET", f"{api}/v1/analytics/email?from={since}", key)
    if status != 200:
        fail(f"GET /v1/analytics/email: {status} {stats}")
    totals = stats.get("totals") or {}
    if (totals.get("sent"), totals.get("bounced")) != (1, 1):
        fail(f"analytics: {stats}")
    print(f"  GET /v1/analytics/email?from={since} → sent {totals.get('sent')}, bounced {totals.get('bounced')}, "
          f"bounce rate {totals.get('bounce_rate')}")

    status, _, _ = http("DELETE", f"{api}/v1/suppressions/{mailbox}", None, {"Authorization": f"Bearer {key}"})
    if status not in (200, 204):
        fail(f"DELETE /v1/suppressions: {status}")
    out = order(api, key, template, "SO-1004")
    if out["email"]["status"] != "sent" or len(ses_messages(moto, ADDRESS)) != before + 1:
        fail(f"after lifting, the thank-you for SO-1004 did not go: {out['email']}")
    print(f"  DELETE /v1/suppressions/{ADDRESS} (mailbox fixed) → SO-1004 thank-you: {out['email']['status']}")


if __name__ == "__main__":
    main()
