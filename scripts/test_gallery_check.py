"""Tests of gallery_check.py's pure parts (PNG decoding, the blank, overflow and size verdicts, the
table); no browser needed.

Run: python3 -m unittest discover -s scripts -p 'test_*.py'
"""

import os
import struct
import sys
import tempfile
import unittest
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gallery_check as gc  # noqa: E402


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def _filter(kind: int, row: bytes, prev: bytes, bpp: int) -> bytes:
    """The encoder side of PNG filtering, written the plain way to check the decoder's shortcuts."""
    out = bytearray()
    for i, x in enumerate(row):
        a = row[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        pred = [0, a, b, (a + b) // 2, _paeth(a, b, c)][kind]
        out.append((x - pred) & 0xFF)
    return bytes(out)


def make_png(width: int, height: int, pixel, colour_type: int = 2, filters=(0,), palette: bytes = b"") -> bytes:
    """A PNG whose pixel (x, y) is `pixel(x, y)` (a tuple of channel values), row y filtered with
    `filters[y % len(filters)]`."""
    bpp = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour_type]
    raw = bytearray()
    prev = bytes(width * bpp)
    for y in range(height):
        row = bytes(v for x in range(width) for v in pixel(x, y))
        kind = filters[y % len(filters)]
        raw.append(kind)
        raw += _filter(kind, row, prev, bpp)
        prev = row
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    body = _chunk(b"IHDR", ihdr)
    if palette:
        body += _chunk(b"PLTE", palette)
    return gc.PNG_SIGNATURE + body + _chunk(b"IDAT", zlib.compress(bytes(raw))) + _chunk(b"IEND", b"")


def noise(x: int, y: int):
    return ((x * 37 + y * 11) % 256, (x * 5 + y * 101) % 256, (x * y + 7) % 256)


class DecodePng(unittest.TestCase):
    def test_every_filter_type_round_trips(self):
        for filters in [(0,), (1,), (2,), (3,), (4,), (0, 1, 2, 3, 4)]:
            png = make_png(13, 9, noise, filters=filters)
            width, height, channels, rows = gc.decode_png(png)
            self.assertEqual((width, height, channels), (13, 9, 3))
            expected = [bytes(v for x in range(13) for v in noise(x, y)) for y in range(9)]
            self.assertEqual(rows, expected, f"filters {filters}")

    def test_rgba_grey_and_palette(self):
        png = make_png(4, 3, lambda x, y: (x, y, 9, 255), colour_type=6, filters=(4, 2))
        self.assertEqual(gc.decode_png(png)[3][2], bytes([0, 2, 9, 255, 1, 2, 9, 255, 2, 2, 9, 255, 3, 2, 9, 255]))
        png = make_png(3, 2, lambda x, y: (x * 100,), colour_type=0, filters=(1,))
        self.assertEqual(gc.decode_png(png)[3], [bytes([0, 100, 200])] * 2)
        palette = bytes([10, 20, 30, 200, 210, 220])
        png = make_png(2, 1, lambda x, y: (x,), colour_type=3, palette=palette)
        self.assertEqual(gc.decode_png(png)[2:], (3, [palette]))

    def test_size_and_refusals(self):
        self.assertEqual(gc.png_size(make_png(7, 5, noise)), (7, 5))
        with self.assertRaises(ValueError):
            gc.decode_png(b"GIF89a")
        with self.assertRaises(ValueError):
            gc.png_size(b"\x89PNG\r\n\x1a\n")
        sixteen_bit = gc.PNG_SIGNATURE + _chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 16, 2, 0, 0, 0)) \
            + _chunk(b"IDAT", zlib.compress(bytes(7))) + _chunk(b"IEND", b"")
        with self.assertRaises(ValueError):
            gc.decode_png(sixteen_bit)


class Blank(unittest.TestCase):
    def test_one_colour_is_blank(self):
        png = make_png(40, 30, lambda x, y: (255, 255, 255), filters=(1, 2, 4))
        colours = gc.colour_summary(png)
        self.assertEqual((colours.distinct, colours.dominant_share), (1, 1.0))
        reasons = gc.blank_reasons("desktop", 500, colours)
        self.assertEqual(len(reasons), 1)
        self.assertIn("single colour", reasons[0])

    def test_one_colour_with_alpha_is_blank(self):
        png = make_png(10, 10, lambda x, y: (243, 244, 246, 255), colour_type=6, filters=(4,))
        self.assertEqual(gc.colour_summary(png).distinct, 1)

    def test_a_difference_outside_the_sampled_rows_still_counts(self):
        # Row 3 is not among the sampled rows (every 8th), yet the image is not one colour.
        png = make_png(20, 20, lambda x, y: (0, 0, 0) if (x, y) == (5, 3) else (255, 255, 255))
        colours = gc.colour_summary(png)
        self.assertEqual(colours.distinct, 2)
        self.assertIn("nearly blank", gc.blank_reasons("mobile", 500, colours)[0])

    def test_an_email_like_screenshot_passes(self):
        # Grey page, white card, dark "text" stripes.
        def email(x, y):
            if not 10 <= x < 90:
                return (243, 244, 246)
            return (17, 24, 39) if y % 6 == 0 and 20 <= x < 70 else (255, 255, 255)
        colours = gc.colour_summary(make_png(100, 60, email, filters=(2, 4, 1)))
        self.assertEqual(colours.distinct, 3)
        self.assertLess(colours.dominant_share, 0.9)
        self.assertEqual(gc.blank_reasons("desktop", 800, colours), [])

    def test_too_little_text_is_blank(self):
        self.assertEqual(gc.blank_reasons("mobile", gc.MIN_TEXT_CHARS, None), [])
        reasons = gc.blank_reasons("mobile", gc.MIN_TEXT_CHARS - 1, None)
        self.assertEqual(len(reasons), 1)
        self.assertIn("visible text", reasons[0])


class Overflow(unittest.TestCase):
    def test_fitting_page(self):
        inside = [{"tag": "td", "what": "td", "left": 0, "right": 375}]
        self.assertEqual(gc.overflow_reasons("mobile", 375, 375, inside), [])

    def test_sub_pixel_edges_are_tolerated(self):
        edge = [{"tag": "a", "what": "a", "left": -0.5, "right": 375.9}]
        self.assertEqual(gc.overflow_reasons("mobile", 375, 375, edge), [])

    def test_document_wider_than_the_viewport(self):
        reasons = gc.overflow_reasons("mobile", 375, 437, [])
        self.assertEqual(reasons, ["mobile: overflows (437 px wide in a 375 px viewport)"])

    def test_clipped_element_is_caught_without_scroll_width(self):
        # overflow:hidden on a container keeps scrollWidth at the viewport; the element still sticks out.
        offenders = [
            {"tag": "td", "what": 'td.pad "Acme"', "left": 8, "right": 460},
            {"tag": "a", "what": 'a "joerg@example.de"', "left": 147, "right": 436},
            {"tag": "span", "what": "span", "left": -3, "right": 100},
        ]
        reasons = gc.overflow_reasons("mobile", 375, 375, offenders)
        self.assertEqual(len(reasons), 1)
        self.assertIn("3 element(s) outside the 375 px viewport", reasons[0])
        # Inline elements first (the likely cause), then by how far out they are.
        self.assertLess(reasons[0].index('a "joerg'), reasons[0].index("span at"))
        self.assertLess(reasons[0].index("span at"), reasons[0].index("td.pad"))


class Size(unittest.TestCase):
    def test_gmail_limit(self):
        self.assertEqual(gc.size_reasons(101_999), [])
        self.assertEqual(len(gc.size_reasons(102_000)), 1)
        self.assertIn("Gmail", gc.size_reasons(150_000)[0])


class Table(unittest.TestCase):
    def test_rows_and_verdicts(self):
        ok = gc.Result(name="order_thanks.en", nbytes=6216, heights={"desktop": 1123, "mobile": 1215})
        bad = gc.Result(name="x.de", nbytes=10, heights={"desktop": 757}, reasons=["mobile: blank"])
        lines = gc.format_table([ok, bad]).splitlines()
        self.assertEqual(lines[0].split(), ["email", "bytes", "desktop", "h", "mobile", "h", "verdict"])
        self.assertEqual(lines[2].split(), ["order_thanks.en", "6216", "1123", "1215", "ok"])
        self.assertEqual(lines[3].split(), ["x.de", "10", "757", "-", "FAIL"])

    def test_email_files_leave_out_the_index_and_other_files(self):
        with tempfile.TemporaryDirectory() as d:
            for name in ["index.html", "b.en.html", "a.de.html", "a.de.txt", "a.de.mobile.png"]:
                open(os.path.join(d, name), "w").close()
            self.assertEqual(gc.email_files(d), ["a.de.html", "b.en.html"])


if __name__ == "__main__":
    unittest.main()
