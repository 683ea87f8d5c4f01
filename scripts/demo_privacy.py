"""The privacy part of the local demo: Jonas asks what the shop holds about him, then to be forgotten.

  1. GET /v1/privacy/export?email=… (a data request often names only the address) → every item held
     about him, by kind, page by page; written to outbox/export-<customer>.json
  2. POST /v1/privacy/erasure {"email": …} → the request, complete, with counts of what was erased and
     what was kept (order ids' tombstones, the suppression under the address's digest)
  3. GET /v1/privacy/requests/{id} → the audit record: who asked, when, counts; no address, no id
  4. the shop replays his order: 409 order_erased; the export now finds nothing

Usage: demo_privacy.py API_BASE API_KEY OUTDIR
"""

from __future__ import annotations

import json
import sys
import urllib.parse

from demo_followups import api_json, fail

CUSTOMER = "cust-5150"
ADDRESS = "jonas.weber@example.de"


def export(api: str, key: str) -> tuple[list[dict], dict[str, int]]:
    pages, kinds, cursor = [], {}, None
    while True:
        query = {"email": ADDRESS} | ({"cursor": cursor} if cursor else {})
        status, page = api_json("GET", f"{api}/v1/privacy/export?{urllib.parse.urlencode(query)}", key)
        if status != 200:
            fail(f"export answered {status}: {page}")
        pages.append(page)
        for kind, items in page["items"].items():
            kinds[kind] = kinds.get(kind, 0) + len(items)
        cursor = page.get("next_cursor")
        if not cursor:
            return pages, kinds


def main() -> None:
    api, key, outdir = sys.argv[1:4]
    pages, kinds = export(api, key)
    path = f"{outdir}/export-{CUSTOMER}.json"
    with open(path, "w") as f:
        json.dump(pages, f, indent=2, sort_keys=True)
    total = sum(kinds.values())
    print(f"→ 200 export by address: customers {pages[0]['customer_ids']}, {total} items of {len(kinds)} kinds "
          f"in {len(pages)} page(s) → {path}")
    print("     " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
    for wanted in ("customer", "order", "send", "shipment", "ledger", "follow_up"):
        if wanted not in kinds:
            fail(f"the export has no {wanted}: {kinds}")

    status, request = api_json("POST", f"{api}/v1/privacy/erasure", key, {"email": ADDRESS})
    if status != 200 or request.get("status") != "completed":
        fail(f"erasure answered {status}: {request}")
    counts = request["counts"]
    erased = sum(n for k, n in counts.items() if k.startswith("erased."))
    kept = ", ".join(f"{k[5:]} {n}" for k, n in sorted(counts.items()) if k.startswith("kept."))
    print(f"→ 200 erasure {request['request_id']}: {erased} items erased; kept in a form that cannot be read back: {kept}")

    status, audit = api_json("GET", f"{api}/v1/privacy/requests/{request['request_id']}", key)
    if status != 200 or CUSTOMER in json.dumps(audit) or ADDRESS in json.dumps(audit):
        fail(f"the audit record: {status} {audit}")
    print(f"→ 200 the audit record: {audit['kind']} {audit['status']}, asked by {audit['requested_by']} "
          f"at {audit['requested_at']}; it names nobody")

    with open(sys.argv[4] if len(sys.argv) > 4 else "examples/order.json") as f:
        order = json.load(f)
    order.update(id="SO-1002", placed_at="2026-11-21T16:05:00Z")
    order["customer"].update(id=CUSTOMER, email=ADDRESS, first_name="Jonas", last_name="Weber",
                             locale="de-DE", time_zone="Europe/Berlin")
    status, body = api_json("POST", f"{api}/v1/orders", key, order)
    code = body.get("error", {}).get("code")
    if status != 409 or code != "order_erased":
        fail(f"the replayed order answered {status}: {body}")
    print(f"→ {status} the shop replays SO-1002: {code}")
    _, kinds_after = export(api, key)
    if any(k != "suppression" for k in kinds_after):
        fail(f"the export after the erasure still finds {kinds_after}")
    print(f"→ 200 export by address again: {kinds_after or 'nothing'}")


if __name__ == "__main__":
    main()
