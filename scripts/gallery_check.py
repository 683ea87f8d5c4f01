"""Checks the email gallery (`aftercare-admin gallery`) in a real browser: Debian's headless Chromium
driven by Selenium through Debian's chromedriver, started exactly as scripts/browser_survey.py starts
it (explicit binary and driver paths, Selenium Manager offline).

For every `<kind>.<locale>.html` in OUTDIR it
  * renders the email at a desktop (1280 px) and a mobile (375 px) layout viewport: the window is
    resized until `window.innerWidth` reads the width (and the check fails unless
    `document.documentElement.clientWidth` does too); scrollbars are hidden, as a phone's overlay
    scrollbars take no width;
  * saves `<kind>.<locale>.desktop.png` and `<kind>.<locale>.mobile.png` beside it, each the whole
    email (Chromium's full-page capture at that width, as tall as the content);
  * fails the email when it is
      - blank: fewer than MIN_TEXT_CHARS characters of rendered text (`document.body.innerText`,
        which leaves out hidden text such as the preheader), or a screenshot that is one colour
        (or nearly: the PNG is decoded here with zlib, no imaging library);
      - wider than the phone: `document.documentElement.scrollWidth` beyond the viewport, or any
        rendered element's box more than 1 px beyond its left or right edge (this also catches
        content clipped by an `overflow:hidden` container, which scrollWidth cannot see);
      - clipped by Gmail: Gmail cuts a message whose HTML exceeds 102 KB ("[Message clipped]").
        Whether that K is 1000 or 1024 bytes is not documented, so the limit here is the stricter
        102,000 bytes of the HTML file (the MIME part adds quoted-printable overhead on top; keep
        well below).

Prints a table (name, bytes, desktop height, mobile height, verdict) and exits 1 naming every failing
email and why (2 when there is nothing to check or no browser).

  gallery_check.py OUTDIR
"""

from __future__ import annotations

import base64
import os
import struct
import sys
import time
import zlib
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# Starts the browser as the demo does; importing it sets SE_OFFLINE (Selenium itself is imported
# only when a browser starts).
import browser_survey  # noqa: E402

DESKTOP_WIDTH = 1280
MOBILE_WIDTH = 375
WIDTHS = (("desktop", DESKTOP_WIDTH), ("mobile", MOBILE_WIDTH))
# Gmail clips at "102 KB"; 102,000 bytes is the conservative reading (see the module docs).
GMAIL_CLIP_BYTES = 102_000
# The shortest email (a merchant alert) shows several hundred characters; a broken one shows none.
MIN_TEXT_CHARS = 100
# A screenshot whose most common colour covers more than this share of it is (nearly) blank.
MAX_DOMINANT_SHARE = 0.995
# Sub-pixel layout can put an edge a fraction past the viewport without anything showing.
OVERFLOW_TOLERANCE_PX = 1
# The tallest screenshot taken; an email taller than this fails (nobody scrolls that far).
MAX_HEIGHT_PX = 12_000
WINDOW_HEIGHT_PX = 900

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------------------------------
# PNG decoding (8-bit greyscale, grey+alpha, RGB, RGBA and palette images; not interlaced): what
# Chromium's screenshots are.

def _chunks(png: bytes):
    if not png.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG")
    i = len(PNG_SIGNATURE)
    while i + 8 <= len(png):
        (length,) = struct.unpack(">I", png[i:i + 4])
        kind = png[i + 4:i + 8]
        data = png[i + 8:i + 8 + length]
        if len(data) != length:
            raise ValueError("truncated PNG chunk")
        yield kind, data
        if kind == b"IEND":
            return
        i += 12 + length
    raise ValueError("PNG without IEND")


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) from the IHDR chunk."""
    if not png.startswith(PNG_SIGNATURE) or png[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    return struct.unpack(">II", png[16:24])


def _add_bytes(a: bytes, b: bytes) -> bytes:
    """Byte-wise (a + b) mod 256 over whole rows at once (SWAR with Python integers)."""
    n = len(a)
    if n == 0:
        return b""
    x = int.from_bytes(a, "big")
    y = int.from_bytes(b, "big")
    low = int.from_bytes(b"\x7f" * n, "big")
    high = int.from_bytes(b"\x80" * n, "big")
    return (((x & low) + (y & low)) ^ ((x ^ y) & high)).to_bytes(n, "big")


def _unfilter(kind: int, line: bytes, prev: bytes, bpp: int) -> bytes:
    if kind == 0:
        return line
    if kind == 2:  # Up
        return _add_bytes(line, prev)
    if kind == 1:  # Sub: a running sum along the row, by doubling shifts
        cur, shift = line, bpp
        while shift < len(line):
            cur = _add_bytes(cur, bytes(shift) + cur[:-shift])
            shift *= 2
        return cur
    row = bytearray(line)
    if kind == 3:  # Average
        for k in range(len(row)):
            left = row[k - bpp] if k >= bpp else 0
            row[k] = (row[k] + ((left + prev[k]) >> 1)) & 0xFF
        return bytes(row)
    if kind == 4:  # Paeth
        for k in range(len(row)):
            if k >= bpp:
                a, c = row[k - bpp], prev[k - bpp]
            else:
                a = c = 0
            b = prev[k]
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            row[k] = (row[k] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        return bytes(row)
    raise ValueError(f"unknown PNG filter type {kind}")


def decode_png(png: bytes) -> tuple[int, int, int, list[bytes]]:
    """(width, height, bytes per pixel, rows of raw pixel bytes); palette images come back as RGB."""
    header = None
    palette = b""
    idat = []
    for kind, data in _chunks(png):
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", data)
        elif kind == b"PLTE":
            palette = data
        elif kind == b"IDAT":
            idat.append(data)
    if header is None:
        raise ValueError("PNG without IHDR")
    width, height, depth, colour, _, _, interlace = header
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour)
    if channels is None or depth != 8 or interlace != 0:
        raise ValueError(f"unsupported PNG: colour type {colour}, depth {depth}, interlace {interlace}")
    stride = width * channels
    raw = zlib.decompress(b"".join(idat))
    if len(raw) < height * (stride + 1):
        raise ValueError("PNG image data is short")
    rows = []
    prev = bytes(stride)
    for y in range(height):
        start = y * (stride + 1)
        prev = _unfilter(raw[start], raw[start + 1:start + 1 + stride], prev, channels)
        rows.append(prev)
    if colour == 3:
        rows = [b"".join(palette[3 * i:3 * i + 3] for i in row) for row in rows]
        channels = 3
    return width, height, channels, rows


@dataclass
class Colours:
    """How varied a screenshot is."""

    pixels: int
    # Distinct colours seen in the sampled rows (a lower bound), 1 only if the whole image is one colour.
    distinct: int
    # Share of the image in its most common colour (exact, for the most common colour of the sample).
    dominant_share: float


# Rows sampled to find the candidate colours (every Nth); the dominant colour's share is then
# counted over every row.
SAMPLE_EVERY = 8


def colour_summary(png: bytes) -> Colours:
    """Distinct colours and the share of the most common one (alpha ignored)."""
    width, height, channels, rows = decode_png(png)
    pixels = width * height
    if pixels == 0:
        return Colours(pixels=0, distinct=0, dominant_share=1.0)
    colour_channels = 1 if channels <= 2 else 3
    counts: Counter = Counter()
    for row in rows[::SAMPLE_EVERY]:
        counts.update(zip(*(row[c::channels] for c in range(colour_channels))))
    dominant = counts.most_common(1)[0][0]
    # Count the dominant colour in every row, a whole row per C call. Pixels with alpha are matched
    # on their colour bytes only, so they take the slow path.
    same = 0
    if channels == colour_channels:
        pattern = bytes(dominant)
        uniform = pattern * width
        for row in rows:
            # bytes.count may start a match across a pixel boundary; for a share that is noise.
            same += width if row == uniform else row.count(pattern)
    else:
        for row in rows:
            same += sum(1 for px in zip(*(row[c::channels] for c in range(colour_channels))) if px == dominant)
    distinct = len(counts)
    if distinct == 1 and same < pixels:
        distinct = 2
    return Colours(pixels=pixels, distinct=distinct, dominant_share=min(same, pixels) / pixels)


def analyse_png(path: str) -> Colours:
    with open(path, "rb") as f:
        return colour_summary(f.read())


# --------------------------------------------------------------------------------------------------
# Verdicts: pure functions of what the browser measured.

def blank_reasons(label: str, text_chars: int, colours: Colours | None) -> list[str]:
    reasons = []
    if text_chars < MIN_TEXT_CHARS:
        reasons.append(f"{label}: blank ({text_chars} characters of visible text, fewer than {MIN_TEXT_CHARS})")
    if colours is not None:
        if colours.distinct < 2:
            reasons.append(f"{label}: blank (the screenshot is a single colour)")
        elif colours.dominant_share > MAX_DOMINANT_SHARE:
            reasons.append(f"{label}: nearly blank ({colours.dominant_share:.1%} of the screenshot is one colour)")
    return reasons


# Boxes that only stretch with what they hold; an inline element (a link, an image, a span) sticking
# out is more likely the cause, so it is named first.
LAYOUT_TAGS = frozenset("table tbody thead tfoot tr td th div p ul ol li h1 h2 h3 h4 h5 h6 center".split())


def overflow_reasons(label: str, viewport: int, scroll_width: int, offenders: list[dict],
                     tolerance: int = OVERFLOW_TOLERANCE_PX) -> list[str]:
    """Reasons the page is wider than `viewport`: the document scrolls sideways, or elements (each
    `{"tag", "what", "left", "right"}`, in CSS px relative to the viewport; the innermost of those
    outside) stick out of it."""
    reasons = []
    if scroll_width > viewport:
        reasons.append(f"{label}: overflows ({scroll_width} px wide in a {viewport} px viewport)")
    beyond = [o for o in offenders if o["right"] > viewport + tolerance or o["left"] < -tolerance]
    if beyond:
        def rank(o):
            return (o.get("tag") in LAYOUT_TAGS, -max(o["right"] - viewport, -o["left"]))
        named = ", ".join(f"{o['what']} at {o['left']:.0f}..{o['right']:.0f} px" for o in sorted(beyond, key=rank)[:3])
        reasons.append(f"{label}: {len(beyond)} element(s) outside the {viewport} px viewport: {named}")
    return reasons


def size_reasons(nbytes: int, limit: int = GMAIL_CLIP_BYTES) -> list[str]:
    if nbytes >= limit:
        return [f"{nbytes} bytes of HTML: Gmail clips at 102 KB (limit here {limit} bytes)"]
    return []


@dataclass
class Result:
    name: str
    nbytes: int
    heights: dict = field(default_factory=dict)
    reasons: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.reasons


def format_table(results: list[Result]) -> str:
    header = ("email", "bytes", "desktop h", "mobile h", "verdict")
    rows = [(r.name, str(r.nbytes), str(r.heights.get("desktop", "-")), str(r.heights.get("mobile", "-")),
             "ok" if r.ok else "FAIL") for r in results]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    align = ["<", ">", ">", ">", "<"]
    lines = []
    for row in [header, *rows]:
        lines.append("  ".join(f"{cell:{a}{w}}" for cell, a, w in zip(row, align, widths)).rstrip())
        if row is header:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def email_files(outdir: str) -> list[str]:
    """The gallery's emails: `*.html` except the index."""
    return sorted(n for n in os.listdir(outdir) if n.endswith(".html") and n != "index.html")


# --------------------------------------------------------------------------------------------------
# The browser.

# Everything rendered with a box, in CSS px relative to the viewport (the page is scrolled to 0,0).
MEASURE_JS = """
window.scrollTo(0, 0);
const doc = document.documentElement;
const tolerance = arguments[0];
const outside = [];
for (const el of document.body.querySelectorAll('*')) {
  const r = el.getBoundingClientRect();
  if (r.width === 0 && r.height === 0) continue;
  if (r.right > doc.clientWidth + tolerance || r.left < -tolerance) outside.push([el, r]);
}
// The innermost ones name the culprit (every table around a too-wide cell sticks out too).
const offenders = outside
  .filter(([el]) => !outside.some(([other]) => other !== el && el.contains(other)))
  .slice(0, 20)
  .map(([el, r]) => {
    const cls = el.getAttribute('class');
    const text = (el.innerText || el.getAttribute('href') || '').trim().replace(/\\s+/g, ' ').slice(0, 48);
    return {tag: el.tagName.toLowerCase(),
            what: el.tagName.toLowerCase() + (cls ? '.' + cls.split(' ').join('.') : '') + (text ? ' "' + text + '"' : ''),
            left: r.left, right: r.right};
  });
return {
  innerWidth: window.innerWidth, innerHeight: window.innerHeight,
  clientWidth: doc.clientWidth, scrollWidth: doc.scrollWidth,
  contentHeight: Math.ceil(Math.max(document.body.scrollHeight, document.body.getBoundingClientRect().height)),
  textChars: (document.body.innerText || '').replace(/\\s+/g, ' ').trim().length,
  offenders: offenders,
};
"""


class Viewport:
    """Sets the layout viewport's width by resizing the window, learning the window frame's width
    (outer minus inner) on the way."""

    def __init__(self, driver):
        self.driver = driver
        self.frame = 0
        self.width = None

    def _settled_width(self, expect: int) -> int:
        """`window.innerWidth` once the resize has reached the page (a resize can return before the
        page sees it): the expected width, or whatever it still is after a second (a window frame)."""
        deadline = time.monotonic() + 1
        while True:
            width = self.driver.execute_script("return window.innerWidth")
            if width == expect or time.monotonic() > deadline:
                return width
            time.sleep(0.02)

    def set(self, width: int) -> dict:
        if self.width != width:
            self.driver.set_window_size(width + self.frame, WINDOW_HEIGHT_PX)
            self.width = width
            inner = self._settled_width(width)
            if inner != width:
                self.frame += width - inner
                self.driver.set_window_size(width + self.frame, WINDOW_HEIGHT_PX)
                self._settled_width(width)
        return self.driver.execute_script(MEASURE_JS, OVERFLOW_TOLERANCE_PX)


def screenshot(driver, width: int, height: int) -> bytes:
    """The whole email, `height` CSS px from the top, at the current viewport width (Chromium lays the
    page out beyond the window for the capture; the width is unchanged)."""
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True, "optimizeForSpeed": True,
        "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
    })
    return base64.b64decode(shot["data"])


def check(outdir: str) -> tuple[list[Result], float]:
    names = email_files(outdir)
    results = []
    analyses = []
    started = time.monotonic()
    # Screenshots are analysed in a second process while the browser renders the next ones.
    with ProcessPoolExecutor(max_workers=1) as pool:
        driver = browser_survey._driver()
        try:
            # Phones draw overlay scrollbars: the page keeps the whole width.
            driver.execute_cdp_cmd("Emulation.setScrollbarsHidden", {"hidden": True})
            viewport = Viewport(driver)
            for i, n in enumerate(names):
                r = Result(name=n[:-len(".html")], nbytes=os.path.getsize(os.path.join(outdir, n)))
                r.reasons.extend(size_reasons(r.nbytes))
                driver.get("file://" + os.path.abspath(os.path.join(outdir, n)))
                # Every other email starts at the width the last one ended with: one resize fewer.
                for label, width in (WIDTHS if i % 2 == 0 else WIDTHS[::-1]):
                    m = viewport.set(width)
                    laid_out = min(m["innerWidth"], m["clientWidth"])
                    if laid_out != width:
                        r.reasons.append(f"{label}: the browser laid the page out {laid_out} px wide, not {width}")
                    height = m["contentHeight"]
                    r.heights[label] = height
                    if height > MAX_HEIGHT_PX:
                        r.reasons.append(f"{label}: {height} px tall (screenshot cut at {MAX_HEIGHT_PX})")
                    png_path = os.path.join(outdir, f"{r.name}.{label}.png")
                    with open(png_path, "wb") as f:
                        f.write(screenshot(driver, width, min(max(height, 1), MAX_HEIGHT_PX)))
                    analyses.append((r, label, pool.submit(analyse_png, png_path)))
                    r.reasons.extend(blank_reasons(label, m["textChars"], None))
                    r.reasons.extend(overflow_reasons(label, width, m["scrollWidth"], m["offenders"]))
                results.append(r)
        finally:
            driver.quit()
        for r, label, analysis in analyses:
            try:
                r.reasons.extend(blank_reasons(label, MIN_TEXT_CHARS, analysis.result()))
            except (ValueError, zlib.error) as e:
                r.reasons.append(f"{label}: unreadable screenshot ({e})")
    return results, time.monotonic() - started


def measure_page(driver, viewport: "Viewport", name: str, ids: tuple[str, ...], min_text: int,
                 png_at) -> tuple[list[str], list[str]]:
    """Lays the page the browser shows out at each of WIDTHS: laid out at that width, not blank
    (`min_text` characters of visible text at least), nothing wider than the viewport, the elements
    `#ids` and the header/main/footer landmarks there; a screenshot of each width saved at
    `png_at(label)` and checked not blank. Returns (problems, screenshots)."""
    from selenium.webdriver.common.by import By

    problems: list[str] = []
    shots: list[str] = []
    for label, width in WIDTHS:
        what = f"{name} {label}"
        m = viewport.set(width)
        laid_out = min(m["innerWidth"], m["clientWidth"])
        if laid_out != width:
            problems.append(f"{what}: the browser laid the page out {laid_out} px wide, not {width}")
        if m["textChars"] < min_text:
            problems.append(f"{what}: blank ({m['textChars']} characters of visible text)")
        if not driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth"):
            problems.append(f"{what}: document.documentElement.scrollWidth {m['scrollWidth']} > "
                            f"window.innerWidth {m['innerWidth']}")
        problems.extend(overflow_reasons(what, width, m["scrollWidth"], m["offenders"]))
        for element in ids:
            if not driver.find_elements(By.ID, element):
                problems.append(f"{what}: no #{element}")
        for landmark in ("header", "main", "footer"):
            if not driver.find_elements(By.TAG_NAME, landmark):
                problems.append(f"{what}: no <{landmark}> landmark")
        height = min(max(m["contentHeight"], 1), MAX_HEIGHT_PX)
        png = png_at(label)
        with open(png, "wb") as f:
            f.write(screenshot(driver, width, height))
        problems.extend(blank_reasons(what, MIN_TEXT_CHARS, analyse_png(png)))
        shots.append(png)
    return problems, shots


def tamper(url: str) -> str:
    """`url` with one character of its token's signature changed."""
    i = len(url) - 3
    return url[:i] + ("A" if url[i] != "A" else "B") + url[i + 1:]


def tampered_page_problems(driver, url: str, hidden_id: str, png: str) -> list[str]:
    """Opens `url` (a tampered signed link) and saves its screenshot as `png`: what is wrong when
    it is not the error page (`#error`) or still shows the element `#hidden_id`."""
    from selenium.webdriver.common.by import By

    driver.get(url)
    problems = []
    if not driver.find_elements(By.ID, "error"):
        problems.append("tampered link: no error page (#error)")
    if driver.find_elements(By.ID, hidden_id):
        problems.append(f"tampered link: #{hidden_id} is shown")
    driver.save_screenshot(png)
    return problems


def pages_main(argv: list[str], check_pages) -> int:
    """The command line of a page check: `OUTDIR TAMPERED_URL NAME=URL…` run through
    `check_pages(pages, tampered, outdir)`, its screenshots listed and its problems reported."""
    outdir, tampered, *named = argv[1:]
    pages = [tuple(n.split("=", 1)) for n in named]
    problems, shots = check_pages(pages, tampered, outdir)
    for s in shots:
        print(f"  {s}")
    for p in problems:
        print(f"FAIL {p}", file=sys.stderr)
    return 1 if problems else 0


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    outdir = argv[0]
    if not os.path.isdir(outdir) or not email_files(outdir):
        print(f"no emails (*.html) in {outdir}: run `aftercare-admin gallery --out {outdir}` first", file=sys.stderr)
        return 2
    from selenium.common.exceptions import WebDriverException

    try:
        results, seconds = check(outdir)
    except (browser_survey.BrowserUnavailable, WebDriverException) as e:
        # The browser could not start or went away: say so, not a traceback.
        print(f"browser: {e}", file=sys.stderr)
        return 2
    print(format_table(results))
    failed = [r for r in results if not r.ok]
    largest = max(results, key=lambda r: r.nbytes)
    print(f"\n{len(results)} emails at {DESKTOP_WIDTH} and {MOBILE_WIDTH} px in {seconds:.1f} s; largest HTML "
          f"{largest.nbytes} bytes ({largest.name}), limit {GMAIL_CLIP_BYTES}; screenshots in {outdir}")
    if failed:
        print(f"\n{len(failed)} email(s) failed:", file=sys.stderr)
        for r in failed:
            for reason in r.reasons:
                print(f"  {r.name}: {reason}", file=sys.stderr)
        return 1
    print("all emails pass: not blank, no horizontal overflow at 375 px, under Gmail's clipping limit")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
