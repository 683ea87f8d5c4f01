"""Answers a feedback survey the way a customer does, in a real browser: Debian's headless Chromium
driven by Selenium through Debian's chromedriver (nothing is downloaded: Selenium Manager is kept
offline and never needed, since both paths are given).

The browser opens the score link from the email, checks that the clicked score is pre-selected,
types a comment, submits the form and waits for the thank-you page; it saves a screenshot of each
page.

Used by scripts/demo_followups.py; also runnable on its own:
  browser_survey.py SCORE_LINK SCORE COMMENT OUTDIR
"""

from __future__ import annotations

import os
import sys

CHROMIUM = os.environ.get("AFTERCARE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("AFTERCARE_CHROMEDRIVER", "/usr/bin/chromedriver")
TIMEOUT_SECONDS = 30

# Selenium Manager must never try to fetch a driver or browser (the paths below are explicit, so it
# is not consulted; offline is the belt to those braces), nor report usage statistics.
os.environ["SE_OFFLINE"] = "true"
os.environ["SE_AVOID_STATS"] = "true"


class BrowserUnavailable(RuntimeError):
    pass


def _driver():
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            raise BrowserUnavailable(f"{path} is missing: install Debian's chromium and chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=800,1000",
                 "--no-first-run", "--no-default-browser-check", "--disable-extensions"):
        options.add_argument(flag)
    service = Service(executable_path=CHROMEDRIVER)
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(TIMEOUT_SECONDS)
    return driver


def answer_survey(link: str, score: int, comment: str, outdir: str) -> dict:
    """Opens `link` (a score link from the survey email), answers with `comment` and submits.

    Returns what the browser saw: the page's heading, the pre-selected score, the thank-you heading
    and the screenshot paths. Raises AssertionError if the page is not what a customer should see.
    """
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    os.makedirs(outdir, exist_ok=True)
    page_png = os.path.join(outdir, "survey-page.png")
    thanks_png = os.path.join(outdir, "survey-thanks.png")
    driver = _driver()
    try:
        driver.get(link)
        wait = WebDriverWait(driver, TIMEOUT_SECONDS)
        form = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "form[method='post']")))
        radios = form.find_elements(By.CSS_SELECTOR, "input[type='radio'][name='score']")
        checked = [r.get_attribute("value") for r in radios if r.is_selected()]
        assert len(radios) >= 2, f"the survey page has {len(radios)} score inputs"
        assert checked == [str(score)], f"the clicked score {score} is not the one pre-selected: {checked}"
        heading = driver.find_element(By.TAG_NAME, "h1").text
        textarea = form.find_element(By.CSS_SELECTOR, "textarea[name='comment']")
        textarea.clear()
        textarea.send_keys(comment)
        driver.save_screenshot(page_png)
        form.find_element(By.CSS_SELECTOR, "button[type='submit'], input[type='submit']").click()
        thanks = wait.until(ec.visibility_of_element_located((By.ID, "thanks"))).text
        driver.save_screenshot(thanks_png)
        return {
            "heading": heading,
            "scores": len(radios),
            "preselected": int(checked[0]),
            "thanks": thanks,
            "browser": f"{driver.capabilities.get('browserName')} {driver.capabilities.get('browserVersion')}",
            "screenshots": [page_png, thanks_png],
        }
    finally:
        driver.quit()


def main() -> int:
    link, score, comment, outdir = sys.argv[1:5]
    result = answer_survey(link, int(score), comment, outdir)
    for k, v in result.items():
        print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
