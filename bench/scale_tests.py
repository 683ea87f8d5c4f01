#!/usr/bin/env python3
"""The scale tests at full size, for BENCHMARKS.md.

The test command runs three scale tests with a smaller N: the properties they assert (no email lost
or sent twice under a burst with concurrent duplicates; a sweep reads only what is due, one
BatchGetItem and one update per due item) hold at either size. This runs the same tests, with the
same assertions, at the full N (AFTERCARE_TEST_SCALE=full, see tests/src/lib.rs `scaled`) against a
moto server of their own (bench/run.py's `Moto`), one at a time, and writes what each took and
printed into BENCHMARKS.md between the `scale-tests` markers (bench/run.py keeps that block when it
rewrites the report).

Usage: .venv/bin/python bench/scale_tests.py [--only NAME]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- scale-tests -->", "<!-- /scale-tests -->"
BLOCK = re.compile(re.escape(START) + r".*?" + re.escape(END) + r"\n?", re.S)

# (test binary, test name, what it proves, N in the test command, N here)
TESTS = [
    ("load", "a_burst_of_orders_sends_each_email_once_and_loses_none",
     "Order Placed events, a tenth delivered twice side by side, 64 in flight: each email once, each order, ledger entry and send record once",
     "1,000 orders", "10,000 orders"),
    ("renewal_checker", "the_sweep_reads_only_the_due_subscriptions_of_many",
     "renewal sweep over stored subscriptions, 1,000 due: items read ÷ due ≤ 1.05, no Scan",
     "20,000 subscriptions", "100,000 subscriptions"),
    ("survey_sender", "a_sweep_of_many_due_items_reads_only_what_is_due",
     "follow-up sweep, 1,000 more not due: items read ÷ due ≤ 1.05, one BatchGetItem and one UpdateItem per due item, no Scan",
     "2,000 due", "10,000 due"),
]


def run(binary: str, name: str, endpoint: str) -> dict:
    env = dict(os.environ, AFTERCARE_TEST_MOTO_ENDPOINT=endpoint, AFTERCARE_TEST_SCALE="full",
               AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1")
    started = time.monotonic()
    out = subprocess.run(["cargo", "nextest", "run", "--locked", "-p", "aftercare-tests", "--test", binary,
                          "--no-capture", "--no-fail-fast", "-E", f"test(={name})"],
                         cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.monotonic() - started
    figures = [line.strip() for line in out.stdout.splitlines()
               if re.search(r"\d+ (due|subscriptions)", line) and "calls" in line]
    return {"passed": out.returncode == 0, "wall": wall, "figures": figures,
            "tail": (out.stdout + out.stderr).splitlines()[-30:]}


def block(results: list[tuple[tuple, dict]]) -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    rows = []
    for (binary, name, what, small, full), r in results:
        figure = "; ".join(f"`{f}`" for f in r["figures"]) or "—"
        rows.append(f"| `{binary}.rs` `{name}` | {what} | {small} | {full} | "
                    f"{'passed' if r['passed'] else '**FAILED**'} | {r['wall']:.0f} | {figure} |")
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    return f"""{START}
## Scale tests at full size (`bench/scale_tests.py`)

The test command runs these tests with the smaller N: the property each asserts holds at either
size, and the smaller run keeps the test command's time within its budget. Here the same tests, with
the same assertions, at the full N (`AFTERCARE_TEST_SCALE=full`), one at a time on a moto server of
their own (commit {commit}, {when}, {os.cpu_count()} cores). Wall time includes seeding and reading
back what moto recorded; moto serves one request at a time, so it is moto's speed, not Aftercare's.

| test | what it proves | test command | full size | result | wall s | figure the test printed |
|---|---|---|---|---|---:|---|
{chr(10).join(rows)}
{END}
"""


def kept_block(report: Path) -> str | None:
    """This script's block of an existing report (bench/run.py carries it over when it rewrites the
    report)."""
    found = BLOCK.search(report.read_text()) if report.exists() else None
    return found.group(0) if found else None


def write(text: str) -> None:
    path = ROOT / "BENCHMARKS.md"
    old = path.read_text() if path.exists() else ""
    new = BLOCK.sub(lambda _: text, old) if BLOCK.search(old) else old.rstrip("\n") + "\n\n" + text
    path.write_text(new)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--only", help="run only the test whose name contains this")
    args = p.parse_args()
    chosen = [t for t in TESTS if not args.only or args.only in t[1]]
    run_dir = ROOT / ".local/run"
    run_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cargo", "build", "--workspace", "--all-targets", "--locked", "--quiet"], cwd=ROOT, check=True)
    results = []
    from run import Moto  # the benchmark's moto server (bench/moto_fast.py) and its start-up

    for test in chosen:
        moto = Moto(sys.executable, run_dir)
        try:
            print(f"{test[0]}::{test[1]} at {test[4]} …", flush=True)
            r = run(test[0], test[1], moto.url)
        finally:
            moto.stop()
        print(f"  {'passed' if r['passed'] else 'FAILED'} in {r['wall']:.0f} s {r['figures']}", flush=True)
        if not r["passed"]:
            print("\n".join(r["tail"]), file=sys.stderr)
        results.append((test, r))
    write(block(results))
    return 0 if all(r["passed"] for _, r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
