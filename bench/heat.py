#!/usr/bin/env python3
"""Partition heat: where one merchant's burst lands on DynamoDB's partitions, and the per-merchant
throughput ceiling that implies (issue 23).

The burst, one merchant, through the release function binaries run as Lambda would (the Runtime API
emulator, scripts/lambda_emulator.py, as in bench/run.py):

1. N `Order Placed` events (order i belongs to customer `i % C`: with N > C some customers order
   twice, a flash sale), through order-placed;
2. per order one shipment of all its items (`Shipment Updated` with `shipment`), then its
   `out_for_delivery` and `delivered` checkpoints (`Shipment Updated` with `checkpoint`), through
   shipment-update: the delivery anchors the order's follow-up journey;
3. the virtual clock (AFTERCARE_VIRTUAL_CLOCK_FILE) moves 3 days and 2 hours on, so each order's
   first follow-up is due, and survey-sender runs ONE scheduled sweep.

moto (bench/moto_heat.py) records every successful write and read server-side, per partition key
value of the base table and of each global secondary index, with DynamoDB's capacity rules
(bench/heat_units.py). The harness knows nothing of the key layout: the keys and indexes come from
DescribeTable, the tallies from what the binaries wrote. The report gives per table and index the
write units, the distinct partition keys written, the hottest key and its share, its write units per
order, and the ceiling = 1,000 WCU/s (a partition's limit) ÷ that; the same for reads against
3,000 RCU/s; the top keys; per phase and in total.

Usage: .venv/bin/python bench/heat.py [--orders 10000] [--customers 7000] [--workers 3]
           [--bin-dir target/release] [--out bench/heat.json] [--label TEXT] [--tallies FILE]
           [--keys-as-pattern]
       .venv/bin/python bench/heat.py --report-from bench/heat-before.json [--tallies FILE --out FILE]
           (print a run's report again; with its --tallies file, summarised again and rewritten to --out)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import heat_units as hu  # noqa: E402
import run  # noqa: E402  (bench/run.py: the Lambda emulator, envelopes, admin setup, the keep-alive proxy)

ORDER_PREFIX = "HEAT"
CUSTOMER_PREFIX = "hc"
SHIPMENT_PREFIX = "HSH"
SWEEP_TIMEOUT = 3600.0
# Far from the first follow-up's 3 days: every delivery of the burst is at least this old at the sweep.
CLOCK_STEP = timedelta(days=3, hours=2)


def log(msg: str) -> None:
    print(f"[heat] {msg}", file=sys.stderr, flush=True)


class HeatMoto(run.Moto):
    """bench/moto_heat.py on a free port (bench/run.py's Moto, with the heat recorder)."""

    def __init__(self, venv_python: str, workdir: Path):  # noqa: D107 — the parent's, another server script
        self.port = run.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"moto-{self.port}.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([venv_python, str(ROOT / "bench/moto_heat.py"), "127.0.0.1", str(self.port)],
                                     env=dict(os.environ, AFTERCARE_MOTO_COUNT="1"),
                                     stdout=subprocess.DEVNULL, stderr=self._log)
        for _ in range(300):
            try:
                urllib.request.urlopen(self.url + "/moto-api/", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("moto did not start")
        self.proxy = run.Proxy(self.port)
        self.endpoint = f"http://127.0.0.1:{self.proxy.port}"
        import boto3
        self.ddb = boto3.client("dynamodb", endpoint_url=self.url, region_name="us-east-1",
                                aws_access_key_id="testing", aws_secret_access_key="testing")

    def heat(self, reset: bool = True) -> dict:
        return run.http("POST" if reset else "GET", self.url + "/_heat", {} if reset else None)


# --------------------------------------------------------------------------------------------------
# The burst


def order_event(merchant: str, sender: str, i: int, customers: int) -> dict:
    e = run.order_event(merchant, sender, i, ORDER_PREFIX)
    c = i % customers
    e["detail"]["order"]["customer"]["id"] = f"{CUSTOMER_PREFIX}-{c}"
    e["detail"]["order"]["customer"]["email"] = f"heat.{c}@example.com"
    return e


def shipment_event(merchant: str, i: int, order: dict) -> dict:
    return run.envelope("Shipment Updated", f"evt-hsh-{i}", {
        "merchant_id": merchant, "order_id": f"{ORDER_PREFIX}-{i}",
        "shipment": {"id": f"{SHIPMENT_PREFIX}-{i}", "carrier": "DHL", "tracking_number": f"JD{i:010d}",
                     "items": [{"sku": it["sku"], "quantity": it["quantity"]} for it in order["items"]]}})


def checkpoint_event(merchant: str, i: int, status: str, at: datetime) -> dict:
    return run.envelope("Shipment Updated", f"evt-hcp-{status}-{i}", {
        "merchant_id": merchant, "shipment_id": f"{SHIPMENT_PREFIX}-{i}",
        "checkpoint": {"status": status, "occurred_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"), "location": "Berlin"}})


def in_parallel(name: str, binary: str, env: dict, n: int, workers: int, work, label: str) -> float:
    """Runs work(fn, i) for i in 0..n on `workers` instances of the function, each its own process."""
    t0 = time.perf_counter()
    done = [0]
    lock = threading.Lock()
    step = max(n // 10, 1)

    stop = threading.Event()  # one worker's failure (or Ctrl-C) ends the others' loops too

    def worker(w: int) -> None:
        fn = run.spawn(name, binary, env)
        try:
            for i in range(w, n, workers):
                if stop.is_set():
                    return
                try:
                    work(fn, i)
                except BaseException:
                    stop.set()
                    raise
                with lock:
                    done[0] += 1
                    if done[0] % step == 0:
                        log(f"  {label}: {done[0]:,}/{n:,} ({time.perf_counter() - t0:.0f} s)")
        finally:
            fn.stop()

    with ThreadPoolExecutor(workers) as ex:
        try:
            list(ex.map(worker, range(workers)))
        except BaseException:
            stop.set()
            raise
    return time.perf_counter() - t0


def set_clock(path: Path, offset_s: int) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"{offset_s}\n")
    os.replace(tmp, path)  # a function never reads half a number


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def burst(args) -> dict:
    bins = Path(args.bin_dir).resolve()
    for name in ("order-placed", "shipment-update", "survey-sender", "aftercare-admin"):
        if not (bins / name).exists():
            raise SystemExit(f"{bins / name} is missing: build the release binaries or pass --bin-dir")
    workdir = Path(tempfile.mkdtemp(prefix="aftercare-heat-"))
    clock = workdir / "virtual-clock"
    set_clock(clock, 0)
    moto = HeatMoto(sys.executable, workdir)
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
           "AWS_DEFAULT_REGION": "us-east-1", "AFTERCARE_TABLE": run.TABLE, "RUST_LOG": "warn",
           "AFTERCARE_PUBLIC_BASE_URL": run.PUBLIC_BASE_URL, "AFTERCARE_SIGNING_KEY": run.SIGNING_KEY,
           "AWS_ENDPOINT_URL": moto.endpoint, "AFTERCARE_VIRTUAL_CLOCK_FILE": str(clock),
           # The sweep's pacing is SES's limit, not the table's: off here, so ONE sweep meets every due item.
           "AFTERCARE_SES_MAX_SEND_RATE": "10000", "AFTERCARE_MERCHANT_CACHE_TTL_SECONDS": "3600"}
    out: dict = {"orders": args.orders, "customers": args.customers, "workers": args.workers, "label": args.label,
                 "bin_dir": str(bins.relative_to(ROOT)) if bins.is_relative_to(ROOT) else "(outside the checkout)",
                 "binaries": {n: sha(bins / n) for n in ("order-placed", "shipment-update",
                                                                               "survey-sender", "aftercare-admin")},
                 "started_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "phases": {}}
    try:
        merchant = run.setup(bins / "aftercare-admin", dict(os.environ, **env), run.bench_merchant(workdir))
        mid, sender = merchant["id"], merchant["from"]
        out["merchant"] = mid
        description = moto.ddb.describe_table(TableName=run.TABLE)["Table"]
        schema = hu.Schema.from_describe(description)
        out["schema"] = {"table": schema.table, "hash_key": schema.hash_key, "range_key": schema.range_key,
                         "indexes": [{"name": i.name, "hash_key": i.hash_key, "range_key": i.range_key,
                                      "projection": i.projection} for i in schema.indexes]}
        log(f"table {schema.table}: key ({schema.hash_key}, {schema.range_key}), indexes "
            + ", ".join(f"{i.name} ({i.hash_key}, {i.range_key}, {i.projection})" for i in schema.indexes))
        moto.heat(reset=True)
        moto.reset()
        n, w = args.orders, args.workers
        orders: dict[int, dict] = {}

        def place(fn, i):
            e = order_event(mid, sender, i, args.customers)
            orders[i] = e["detail"]["order"]
            run.invoke_ok(fn, e)

        def phase(label: str, seconds: float, extra: dict | None = None) -> None:
            heat = moto.heat(reset=True)
            calls = {k: v for k, v in moto.calls().items() if not k.endswith(" /_heat")}
            moto.reset()
            out["phases"][label] = {"seconds": seconds, "tallies": heat["tallies"], "requests": heat["requests"],
                                    "calls": calls, **(extra or {})}
            log(f"{label}: {seconds:.0f} s, {sum(heat['requests'].values()):,} DynamoDB requests recorded")

        log(f"burst: {n:,} orders of {min(n, args.customers):,} customers, {w} processes per function")
        phase("orders", in_parallel("order-placed", str(bins / "order-placed"), env, n, w, place, "orders"))

        def ship(fn, i):
            run.invoke_ok(fn, shipment_event(mid, i, orders[i]))
            now = datetime.now(timezone.utc).replace(microsecond=0)
            run.invoke_ok(fn, checkpoint_event(mid, i, "out_for_delivery", now - timedelta(hours=2)))
            r = run.invoke_ok(fn, checkpoint_event(mid, i, "delivered", now - timedelta(hours=1)))
            if i == 0:
                log(f"  the first delivery: {json.dumps(r)[:300]}")

        phase("shipments", in_parallel("shipment-update", str(bins / "shipment-update"), env, n, w, ship,
                                       "shipments and checkpoints"))

        set_clock(clock, int(CLOCK_STEP.total_seconds()))
        fn = run.spawn("survey-sender", str(bins / "survey-sender"), env, SWEEP_TIMEOUT)
        try:
            t0 = time.perf_counter()
            report = run.invoke_ok(fn, run.scheduled_event("heat"))
            seconds = time.perf_counter() - t0
        finally:
            fn.stop()
        log(f"  the sweep: {json.dumps(report)[:400]}")
        phase("sweep", seconds, {"report": report})
    finally:
        moto.stop()
    out["finished_at"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return out


# --------------------------------------------------------------------------------------------------
# The report


def summarise(result: dict) -> dict:
    """Per phase and in total (the phases' tallies merged): bench/heat_units.summarise; the hottest
    key over the table and its indexes together; and issue 23's bar."""
    n = result["orders"]
    phases = {label: hu.summarise(p["tallies"], n) for label, p in result["phases"].items()}
    merged = hu.merge(*(p["tallies"] for p in result["phases"].values()))
    total = hu.summarise(merged, n)
    units = {(t, k): c["wcu"] for t, parts in merged.items() for k, c in parts.items() if c["wcu"] > 0}
    all_units = sum(units.values())
    hot = max(units, key=lambda tk: units[tk]) if units else None
    overall = {"units": all_units, "hottest": {"target": hot[0], "key": hot[1], "share": units[hot] / all_units}
               if hot else None}
    # Every index of the table, written in this burst or not (an index without writes sets no limit).
    targets = [hu.TABLE] + [f"gsi:{i['name']}" for i in result["schema"]["indexes"]]
    ceilings = {t: (total.get(t, {}).get("writes") or {}).get("ceiling_orders_per_s") for t in targets}
    table_share = ((total.get(hu.TABLE, {}).get("writes") or {}).get("hottest") or {}).get("share")
    bar = {"table_hottest_share": table_share,
           "table_hottest_share_at_most_1_percent": table_share is not None and table_share <= 0.01,
           "write_ceilings": ceilings,
           "every_write_ceiling_at_least_5000": all(c is None or c >= 5000 for c in ceilings.values())}
    return {"total": total, "all_writes": overall, "issue_23_bar": bar, "phases": phases}


def pattern(key: str, merchant: str) -> str:
    """A key with the burst's ids replaced by what they are: <m>, <o>, <c>, <s>, <email>."""
    key = key.replace(merchant, "<m>")
    key = re.sub(r"heat\.\d+@example\.com", "<email>", key)
    key = re.sub(rf"{ORDER_PREFIX}-\d+", "<o>", key)
    key = re.sub(rf"{SHIPMENT_PREFIX}-\d+", "<s>", key)
    return re.sub(rf"\b{CUSTOMER_PREFIX}-\d+", "<c>", key)


def fmt_ceiling(x: float | None) -> str:
    return "—" if x is None else f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def markdown(result: dict, summary: dict, keys_as_pattern: bool) -> str:
    mid = result["merchant"]
    show = (lambda k: pattern(k, mid)) if keys_as_pattern else (lambda k: k)
    n = result["orders"]
    total = summary["total"]
    sweep = result["phases"].get("sweep", {}).get("report", {})

    def num(k: str) -> str:
        return f"{sweep[k]:,}" if isinstance(sweep.get(k), int) else "?"

    took = ", ".join(f"{k} {p['seconds']:.0f} s" for k, p in result["phases"].items())
    schema = result["schema"]
    lines = [
        f"Burst of {n:,} orders of one merchant (`{mid}`; order i by customer `i % {result['customers']:,}`), each "
        f"shipped and checkpointed `out_for_delivery` and `delivered`, then one survey-sender sweep 3 days on "
        f"(it found {num('due')} due: sent {num('sent')}, deferred {num('deferred')}, skipped {num('skipped')}, "
        f"left for the next run {num('left_for_next_run')}, errors {num('errors')}). Binaries: {result.get('label') or result['bin_dir']}; "
        f"run {result['started_at']}, {sum(p['seconds'] for p in result['phases'].values()) / 60:.1f} min "
        f"({took}).",
        "",
        f"Table `{schema['table']}`: key ({schema['hash_key']}, {schema['range_key']}); global secondary indexes: "
        + (", ".join(f"`{i['name']}` ({i['hash_key']}, {i['range_key']}, {i['projection']})" for i in schema["indexes"])
           or "none") + ".",
        "",
        "| table / index | write units | keys written | hottest key | its share | its WCU per order | ceiling (orders/s) |",
        "|---|---:|---:|---|---:|---:|---:|",
    ]
    for target in [hu.TABLE] + [f"gsi:{i['name']}" for i in schema["indexes"]]:
        w = total.get(target, {}).get("writes")
        if not w:
            lines.append(f"| {target} | 0 | 0 | — | — | — | no writes: no limit |")
            continue
        h = w["hottest"]
        lines.append(f"| {target} | {w['units']:,} | {w['distinct_keys']:,} | `{show(h['key'])}` | "
                     f"{h['share'] * 100:.1f}% | {h['units_per_order']:.2f} | {fmt_ceiling(w['ceiling_orders_per_s'])} |")
    bar = summary.get("issue_23_bar")
    ceilings = [c for c in (bar or {}).get("write_ceilings", {}).values() if c is not None]
    if ceilings:
        lines += ["", f"Per-merchant write ceiling (the lowest over the table and its indexes): "
                      f"**{fmt_ceiling(min(ceilings))} orders per second** "
                      f"(1,000 WCU/s per partition ÷ the hottest key's write units per order)."]
    overall = summary.get("all_writes") or {}
    if overall.get("hottest"):
        h = overall["hottest"]
        lines += ["", f"All writes together (table and indexes): {overall['units']:,} write units, "
                      f"{overall['units'] / n:.1f} per order; the hottest key, `{show(h['key'])}` ({h['target']}), "
                      f"takes {h['share'] * 100:.1f}% of them."]
    if bar:
        share = bar["table_hottest_share"]
        lines += ["", "Issue 23's bar: the hottest base-table key takes ≤ 1% of the merchant's writes: "
                      f"**{'yes' if bar['table_hottest_share_at_most_1_percent'] else 'no'}** "
                      f"({'—' if share is None else f'{share * 100:.2f}%'}); the ceiling is ≥ 5,000 orders/s for the "
                      f"table and every index: **{'yes' if bar['every_write_ceiling_at_least_5000'] else 'no'}** ("
                      + ", ".join(f"{t} {fmt_ceiling(c)}" for t, c in bar["write_ceilings"].items()) + ")."]
    reads = [(t, e["reads"]) for t, e in total.items() if e.get("reads")]
    if reads:
        lines += ["", "| reads: table / index | read units | keys read | hottest key | its share | its RCU per order | "
                      "ceiling (orders/s) |", "|---|---:|---:|---|---:|---:|---:|"]
        for target, r in reads:
            h = r["hottest"]
            lines.append(f"| {target} | {r['units']:,.1f} | {r['distinct_keys']:,} | `{show(h['key'])}` | "
                         f"{h['share'] * 100:.1f}% | {h['units_per_order']:.2f} | "
                         f"{fmt_ceiling(r['ceiling_orders_per_s'])} |")
    lines += ["", "Top keys by write units (whole burst):", ""]
    for target, e in total.items():
        w = e.get("writes")
        if w:
            lines.append(f"* {target}: " + ", ".join(f"`{show(t['key'])}` {t['share'] * 100:.1f}%" for t in w["top"]))
    lines += ["", "Per phase (the ceiling if the phase were all a merchant's traffic):", "",
              "| phase | table / index | write units | keys | hottest key | share | its WCU per order | ceiling (orders/s) |",
              "|---|---|---:|---:|---|---:|---:|---:|"]
    for label, s in summary["phases"].items():
        for target, e in s.items():
            w = e.get("writes")
            if w:
                h = w["hottest"]
                lines.append(f"| {label} | {target} | {w['units']:,} | {w['distinct_keys']:,} | `{show(h['key'])}` | "
                             f"{h['share'] * 100:.1f}% | {h['units_per_order']:.2f} | "
                             f"{fmt_ceiling(w['ceiling_orders_per_s'])} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--orders", type=int, default=10000)
    p.add_argument("--customers", type=int, default=7000, help="order i belongs to customer i %% C")
    p.add_argument("--workers", type=int, default=3, help="processes per function, invoked in parallel")
    p.add_argument("--bin-dir", default=str(ROOT / "target/release"), help="the release binaries to run")
    p.add_argument("--label", default="", help="what the binaries are (e.g. a commit), for the report")
    p.add_argument("--out", help="write the run (tallies summarised) as JSON")
    p.add_argument("--tallies", metavar="FILE", help="also write every partition key's tallies, per phase, as JSON")
    p.add_argument("--keys-as-pattern", action="store_true", help="show keys with <m>, <o>, <c>, <s> for the ids")
    p.add_argument("--report-from", metavar="JSON", help="print the report of an earlier run's --out file")
    args = p.parse_args()
    if args.report_from:
        saved = json.loads(Path(args.report_from).read_text())
        if args.tallies:  # summarise again from the run's tallies (and rewrite --out with it)
            tallies = json.loads(Path(args.tallies).read_text())
            full = dict(saved["run"], phases={k: dict(v, tallies=tallies[k]) for k, v in saved["run"]["phases"].items()})
            saved["summary"] = summarise(full)
            if args.out:
                Path(args.out).write_text(json.dumps(saved, indent=2) + "\n")
        print(markdown(saved["run"], saved["summary"], args.keys_as_pattern))
        return 0
    if args.orders < 1 or args.customers < 1 or not 1 <= args.workers <= 8:
        p.error("--orders and --customers must be ≥ 1, --workers 1..8")
    result = burst(args)
    summary = summarise(result)
    text = markdown(result, summary, args.keys_as_pattern)
    print(text)
    if args.out:
        kept = {k: v for k, v in result.items() if k != "phases"}
        kept["phases"] = {k: {f: x for f, x in v.items() if f != "tallies"} for k, v in result["phases"].items()}
        Path(args.out).write_text(json.dumps({"run": kept, "summary": summary}, indent=2) + "\n")
        log(f"wrote {args.out}")
    if args.tallies:  # every key's tallies: large on a schema with a key per entity, so not in --out
        Path(args.tallies).write_text(json.dumps({k: v["tallies"] for k, v in result["phases"].items()}) + "\n")
        log(f"wrote {args.tallies}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
