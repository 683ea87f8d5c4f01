"""The tracking-page part of the local demo: the branded page of three shipments, found through
their links in `GET /v1/orders/{orderId}` (the same links the shipping emails carry):

  SH-1001-1            delivered, English (with the tent's usage tips and related products)
  SH-1002-1            running late, German
  the Shopify parcel   in transit with two tracking numbers, German

Over HTTP each page answers 200 and says what it should (delivered, late, in transit), and a
tampered link answers 400 with the error page. With AFTERCARE_DEMO_BROWSER=chromium the pages are
then opened in headless Chromium at 1280 and 375 px (scripts/browser_tracking.py: not blank, nothing
wider than the viewport, the timeline there) and the demo order's page is saved as
OUTDIR/tracking-page.png.

Usage: demo_tracking.py API API_KEY OUTDIR
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from demo_followups import fail  # noqa: E402

FULFILLMENT = "tests/fixtures/shopify/fulfillments-create.json"


def get(url: str, key: str | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def tracking_link(api: str, key: str, order: str, shipment: str) -> str:
    status, body = get(f"{api}/v1/orders/{order}", key)
    if status != 200:
        fail(f"GET /v1/orders/{order} answered {status}: {body}")
    for s in json.loads(body)["shipments"]:
        if s["id"] == shipment and s.get("tracking_page_url"):
            return s["tracking_page_url"]
    fail(f"GET /v1/orders/{order} has no tracking page link for {shipment}")
    raise AssertionError


def main() -> None:
    api, key, outdir = sys.argv[1:4]
    shopify = json.load(open(FULFILLMENT))
    pages = [
        ("delivered-en", "SO-1001", "SH-1001-1", ['lang="en"', "Your parcel has been delivered", 'id="tips"']),
        ("late-de", "SO-1002", "SH-1002-1", ['lang="de"', 'id="late"', "verspätet"]),
        ("in-transit-de", str(shopify["order_id"]), f"shopify-{shopify['id']}",
         ['lang="de"', "Ihr Paket ist unterwegs", shopify["tracking_numbers"][1]]),
    ]
    links = []
    for name, order, shipment, says in pages:
        url = tracking_link(api, key, order, shipment)
        status, html = get(url)
        missing = [s for s in says if s not in html]
        if status != 200 or missing:
            fail(f"the tracking page of {shipment} answered {status}, without {missing}")
        print(f"→ {status} {name}: {url[:60]}…")
        links.append((name, url))

    import browser_tracking

    tampered = browser_tracking.tamper(links[0][1])
    status, html = get(tampered)
    if status != 400 or 'id="error"' not in html:
        fail(f"a tampered tracking link answered {status}")
    print(f"→ {status} a tampered link: the error page")

    if os.environ.get("AFTERCARE_DEMO_BROWSER") != "chromium":
        print("(set AFTERCARE_DEMO_BROWSER=chromium to check the pages in headless Chromium)")
        return
    problems, shots = browser_tracking.check_pages(links, tampered, outdir)
    for p in problems:
        print(f"FAIL {p}", file=sys.stderr)
    if problems:
        fail(f"{len(problems)} problem(s) with the tracking pages in headless Chromium")
    shutil.copyfile(os.path.join(outdir, "tracking-delivered-en.desktop.png"), os.path.join(outdir, "tracking-page.png"))
    print(f"→ {len(links)} tracking pages at 1280 and 375 px in headless Chromium: not blank, nothing wider "
          f"than the viewport, the timeline there; {len(shots)} screenshots; {outdir}/tracking-page.png")


if __name__ == "__main__":
    main()
