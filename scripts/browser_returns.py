"""Opens orders' return portals (`GET /v1/return/{token}`) in headless Chromium, the way a customer
following the "Start a return" link from the delivered email does, with the gallery's browser and
measurements (scripts/gallery_check.py: Debian's Chromium through Selenium, nothing downloaded).

Each portal is checked at 1280 and 375 px: it is not blank (visible text and a screenshot of more
than one colour), nothing is wider than the viewport, and its form (`#return-form` with `#items`,
`#confirm`) and policy (`#policy`) are there; both screenshots are saved as
OUTDIR/returns-<name>.<desktop|mobile>.png. Then the customer asks for a return: quantity 1 of the
first line that may come back, the first reason offered, store credit (or the first resolution
offered), `#confirm`; the confirmation (`#return-done`) is checked and saved the same way as
OUTDIR/returns-<name>-done.<desktop|mobile>.png. A tampered link must show the error page (`#error`)
and no form.

Used by the local demo when a merchant's return policy is on; also runnable on its own:
  browser_returns.py OUTDIR TAMPERED_URL NAME=URL [NAME=URL ...]
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import browser_survey  # noqa: E402  (sets Selenium offline before anything starts a browser)
import gallery_check as gc  # noqa: E402

# The portal lists the order, the choices and the policy; a broken one shows next to nothing.
MIN_PAGE_TEXT_CHARS = 200
# The confirmation is shorter: the number, the status, the items and what happens next.
MIN_DONE_TEXT_CHARS = 120
# The resolution a customer in these checks prefers, when the merchant offers it.
PREFERRED_RESOLUTION = "store_credit"


def pick_line(lines: list[tuple[int, int]]) -> int | None:
    """The order line to return: the first (index, most that may come back) with at least one unit."""
    for index, most in sorted(lines):
        if most >= 1:
            return index
    return None


def pick_resolution(offered: list[str], preferred: str = PREFERRED_RESOLUTION) -> str | None:
    """`preferred` if it is offered, else the first resolution offered (none: None)."""
    if preferred in offered:
        return preferred
    return offered[0] if offered else None


def line_index(select_name: str) -> int | None:
    """The order line a form field names (`qty-3` → 3), or None for another field."""
    prefix, _, index = select_name.partition("-")
    if prefix != "qty" or not index.isdigit():
        return None
    return int(index)


def screenshot_path(outdir: str, name: str, label: str) -> str:
    """Where the screenshot of `name` at `label` (desktop, mobile) goes."""
    return os.path.join(outdir, f"returns-{name}.{label}.png")


tamper = gc.tamper


def _ask_for_return(driver, name: str) -> list[str]:
    """Fills the form as a customer does and sends it; the problems found on the way."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    quantities = {}
    for select in driver.find_elements(By.CSS_SELECTOR, "#return-form select"):
        index = line_index(select.get_attribute("name") or "")
        if index is not None:
            values = [int(o.get_attribute("value")) for o in Select(select).options]
            quantities[index] = (select, max(values, default=0))
    line = pick_line([(i, most) for i, (_, most) in quantities.items()])
    if line is None:
        return [f"{name}: no line may come back"]
    Select(quantities[line][0]).select_by_value("1")
    reasons = Select(driver.find_element(By.NAME, f"reason-{line}"))
    offered = [o.get_attribute("value") for o in reasons.options if o.get_attribute("value")]
    if not offered:
        return [f"{name}: no reason offered for line {line}"]
    reasons.select_by_value(offered[0])
    radios = driver.find_elements(By.CSS_SELECTOR, "input[type='radio'][name='resolution']")
    resolution = pick_resolution([r.get_attribute("value") for r in radios])
    if resolution is None:
        return [f"{name}: no resolution offered"]
    next(r for r in radios if r.get_attribute("value") == resolution).click()
    driver.find_element(By.ID, "confirm").click()
    WebDriverWait(driver, browser_survey.TIMEOUT_SECONDS).until(
        ec.presence_of_element_located((By.ID, "return-done")))
    return []


def check_portals(pages: list[tuple[str, str]], tampered: str, outdir: str) -> tuple[list[str], list[str]]:
    """Checks every (name, url) of `pages`, asks for one return on each, and checks the `tampered`
    link; returns (problems, screenshots)."""
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
                problems.append(f"{name}: the error page, not the return portal")
                continue
            found, taken = gc.measure_page(driver, viewport, name, ("return-form", "items", "confirm", "policy"),
                                           MIN_PAGE_TEXT_CHARS, lambda label: screenshot_path(outdir, name, label))
            problems.extend(found)
            shots.extend(taken)
            viewport.set(gc.WIDTHS[0][1])
            found = _ask_for_return(driver, name)
            problems.extend(found)
            if found:
                continue
            done = f"{name}-done"
            found, taken = gc.measure_page(driver, viewport, done, ("return-done",), MIN_DONE_TEXT_CHARS,
                                           lambda label: screenshot_path(outdir, done, label))
            problems.extend(found)
            shots.extend(taken)
        png = os.path.join(outdir, "returns-tampered.png")
        problems.extend(gc.tampered_page_problems(driver, tampered, "return-form", png))
        shots.append(png)
    finally:
        driver.quit()
    return problems, shots


if __name__ == "__main__":
    sys.exit(gc.pages_main(sys.argv, check_portals))
