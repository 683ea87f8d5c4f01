"""The return-portal part of the local demo: the customer of SO-1001 follows "Start a return" from
the delivered order's tracking page (the link the delivered email carries too) and asks for a
return.

Over HTTP the portal answers 200 with its form, a tampered link 400 with the error page, and the
form sent twice (the same one-time key) answers the same return. With AFTERCARE_DEMO_BROWSER=chromium
the portal is instead driven in headless Chromium at 1280 and 375 px (scripts/browser_returns.py: not
blank, nothing wider than the viewport, the form and the policy there, then one unit of the first
returnable line asked back and the confirmation checked) and saved as OUTDIR/returns-page.png.

A merchant without a return policy has no "Start a return" link: the step says so and checks nothing.

Usage: demo_returns.py API API_KEY OUTDIR
"""

from __future__ import annotations

import html
import os
import re
import shutil
import sys
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from demo_followups import fail  # noqa: E402
from demo_tracking import get, tracking_link  # noqa: E402
import browser_returns  # noqa: E402


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


def main() -> None:
    api, key, outdir = sys.argv[1:4]
    status, tracking = get(tracking_link(api, key, "SO-1001", "SH-1001-1"))
    url = start_return_link(tracking) if status == 200 else None
    if url is None:
        print("(the merchant's return policy is off: no return portal to check)")
        return
    status, portal = get(url)
    if status != 200 or 'id="return-form"' not in portal:
        fail(f"the return portal answered {status} without its form")
    print(f"→ {status} the return portal of SO-1001: {url[:60]}…")
    tampered = browser_returns.tamper(url)
    status, page = get(tampered)
    if status != 400 or 'id="error"' not in page:
        fail(f"a tampered return link answered {status}")
    print(f"→ {status} a tampered link: the error page")

    if os.environ.get("AFTERCARE_DEMO_BROWSER") == "chromium":
        problems, shots = browser_returns.check_portals([("so-1001", url)], tampered, outdir)
        for p in problems:
            print(f"FAIL {p}", file=sys.stderr)
        if problems:
            fail(f"{len(problems)} problem(s) with the return portal in headless Chromium")
        shutil.copyfile(browser_returns.screenshot_path(outdir, "so-1001", "desktop"),
                        os.path.join(outdir, "returns-page.png"))
        print(f"→ the return portal at 1280 and 375 px in headless Chromium, a return asked for and confirmed; "
              f"{len(shots)} screenshots; {outdir}/returns-page.png")
        return
    form = form_of(portal)
    if form is None:
        fail("the return portal offers nothing to return")
    answers = [post_form(url, form) for _ in range(2)]
    numbers = {return_number(body) for _, body in answers}
    if any(s != 200 for s, _ in answers) or len(numbers) != 1 or None in numbers:
        fail(f"the return form answered {[s for s, _ in answers]} with returns {numbers}")
    print(f"→ 200 return {numbers.pop()} asked for; the same form sent again answers the same return")


if __name__ == "__main__":
    main()
