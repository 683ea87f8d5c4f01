"""Opens shipments' tracking pages (`GET /v1/track/{token}`) in headless Chromium, the way a customer
following the link from a shipping email does, with the gallery's browser and measurements
(scripts/gallery_check.py: Debian's Chromium through Selenium, nothing downloaded).

Each page is checked at 1280 and 375 px: it is not blank (visible text and a screenshot of more than
one colour), nothing is wider than the viewport (`document.documentElement.scrollWidth <=
window.innerWidth`, and no element sticks out), and its timeline (`#timeline`) is there; both
screenshots are saved as OUTDIR/tracking-<name>.<desktop|mobile>.png. A tampered link must show
the error page (`#error`) and no timeline.

Used by scripts/demo_tracking.py; also runnable on its own:
  browser_tracking.py OUTDIR TAMPERED_URL NAME=URL [NAME=URL ...]
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import browser_survey  # noqa: E402  (sets Selenium offline before anything starts a browser)
import gallery_check as gc  # noqa: E402

# The tracking page shows far more than the shortest email; a broken one shows next to nothing.
MIN_PAGE_TEXT_CHARS = 200


def check_pages(pages: list[tuple[str, str]], tampered: str, outdir: str) -> tuple[list[str], list[str]]:
    """Checks every (name, url) of `pages` and the `tampered` link; returns (problems, screenshots)."""
    from selenium.webdriver.common.by import By

    os.makedirs(outdir, exist_ok=True)
    problems: list[str] = []
    shots: list[str] = []
    driver = browser_survey._driver()
    try:
        # Phones draw overlay scrollbars: the page keeps the whole width.
        driver.execute_cdp_cmd("Emulation.setScrollbarsHidden", {"hidden": True})
        viewport = gc.Viewport(driver)
        for name, url in pages:
            driver.get(url)
            if driver.find_elements(By.ID, "error"):
                problems.append(f"{name}: the error page, not the tracking page")
            found, taken = gc.measure_page(
                driver, viewport, name, ("timeline",), MIN_PAGE_TEXT_CHARS,
                lambda label: os.path.join(outdir, f"tracking-{name}.{label}.png"))
            problems.extend(found)
            shots.extend(taken)
        png = os.path.join(outdir, "tracking-tampered.png")
        problems.extend(gc.tampered_page_problems(driver, tampered, "timeline", png))
        shots.append(png)
    finally:
        driver.quit()
    return problems, shots


tamper = gc.tamper


if __name__ == "__main__":
    sys.exit(gc.pages_main(sys.argv, check_pages))
