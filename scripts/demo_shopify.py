"""The Shopify part of the local demo: the merchant's store talks to Aftercare with no glue code.

  1. Shopify's `orders/create` webhook (the published sample's shape: a German customer, two lines, a
     discount code, a shipping line, ids beyond 2^53), signed as Shopify signs it: base64 HMAC-SHA256 of
     the raw body with the store's secret → the order is placed and thanked, in German
  2. Shopify retries the same delivery (same X-Shopify-Event-Id) → `duplicate`, nothing sent
  3. `fulfillments/create` with two tracking numbers, in transit → the shipment and its "shipped" email
  4. a delivery signed with another secret → 401, nothing stored

Usage: demo_shopify.py API_BASE MERCHANT_JSON
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sys
import urllib.error
import urllib.request

from demo_followups import fail

ORDER = "tests/fixtures/shopify/orders-create.json"
FULFILLMENT = "tests/fixtures/shopify/fulfillments-create.json"


def deliver(api: str, merchant_id: str, shop: str, secret: str, topic: str, event_id: str, raw: bytes) -> tuple[int, dict]:
    signature = base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha256).digest()).decode()
    req = urllib.request.Request(f"{api}/v1/connectors/shopify/{merchant_id}", data=raw, method="POST", headers={
        "Content-Type": "application/json", "X-Shopify-Topic": topic, "X-Shopify-Hmac-Sha256": signature,
        "X-Shopify-Shop-Domain": shop, "X-Shopify-Event-Id": event_id, "X-Shopify-API-Version": "2025-10",
        "X-Shopify-Webhook-Id": f"wh-{event_id}",
    })
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def main() -> None:
    api, merchant_path = sys.argv[1:3]
    merchant = json.load(open(merchant_path))
    shop = merchant["connectors"]["shopify"]["shop_domain"]
    secret = merchant["connectors"]["shopify"]["secrets"][0]
    order = open(ORDER, "rb").read()

    status, out = deliver(api, merchant["id"], shop, secret, "orders/create", "demo-create-1", order)
    if status != 200 or out.get("result") != "placed":
        fail(f"orders/create answered {status}: {out}")
    print(f"→ 200 orders/create {out['name']} (order {out['order_id']}): {out['result']}, thank-you {out['email']}")

    status, out = deliver(api, merchant["id"], shop, secret, "orders/create", "demo-create-1", order)
    if status != 200 or out.get("result") != "duplicate":
        fail(f"the redelivered orders/create answered {status}: {out}")
    print(f"→ 200 the same delivery again (Shopify's retry): {out['result']}, nothing sent")

    status, out = deliver(api, merchant["id"], shop, secret, "fulfillments/create", "demo-fulfil-1",
                          open(FULFILLMENT, "rb").read())
    if status != 200 or out.get("result") != "shipment_created":
        fail(f"fulfillments/create answered {status}: {out}")
    print(f"→ 200 fulfillments/create: {out['result']} {out['shipment_id']}, "
          f"tracking {out.get('checkpoint', {}).get('status', 'recorded')}")

    status, out = deliver(api, merchant["id"], shop, "shpss_someone_elses_secret_0000", "orders/create", "demo-forged", order)
    if status != 401:
        fail(f"a delivery signed with another secret answered {status}: {out}")
    print(f"→ 401 a delivery signed with another secret: {out['error']['code']}, nothing stored")


if __name__ == "__main__":
    main()
