#!/usr/bin/env python3
"""A local stand-in for the AWS Lambda service, for real compiled Lambda binaries.

It runs each function binary as Lambda would (a child process with the Lambda environment and its own
Runtime API endpoint: https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html), and plays the
event sources in front of it:

* API Gateway HTTP API, payload format 2.0: requests matching a route become v2 events and the
  function's answer becomes the HTTP response;
* EventBridge: ``POST /_local/events`` takes a PutEvents body and invokes every function whose rule
  matches the detail-type;
* Lambda Invoke: ``POST /_local/invoke/NAME`` with a raw event.

``GET /_local/health`` and ``GET /_local/stats`` report readiness and per-function counters (for the
benchmark harness). Standard library only; PyYAML is needed only for ``--routes-from-template``.

Usage:
  lambda_emulator.py --function order-placed=target/debug/order-placed \\
      --routes-from-template infra/template.yaml --http-port 0 --ready-file /tmp/port \\
      --env AFTERCARE_TABLE=aftercare-local
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

ACCOUNT = "123456789012"
MAX_BODY = 6 * 1024 * 1024
RUNTIME_PREFIX = "/2018-06-01/runtime"


def log(msg: str) -> None:
    print(f"[emulator] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Invocation:
    def __init__(self, event: bytes, timeout: float):
        self.id = str(uuid.uuid4())
        self.event = event
        self.deadline = time.time() + timeout
        self.done = threading.Event()
        self.ok = False
        self.body = b""

    def finish(self, ok: bool, body: bytes) -> None:
        if not self.done.is_set():
            self.ok, self.body = ok, body
            self.done.set()


class Function:
    """One function binary: a child process with its own Runtime API server."""

    def __init__(self, name: str, binary: str, env: dict[str, str], timeout: float, region: str):
        self.name, self.binary, self.timeout = name, binary, timeout
        self.pending: queue.Queue[Invocation | None] = queue.Queue()
        self.in_flight: dict[str, Invocation] = {}
        self.lock = threading.Lock()
        self.state = "starting"
        self.ready = threading.Event()
        self.invocations = 0
        self.errors = 0
        self.init_ms: float | None = None
        self.spawned_at = time.monotonic()
        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self._runtime_handler())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        child_env = dict(os.environ)
        child_env.update(
            {
                "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{self.port}",
                "AWS_LAMBDA_FUNCTION_NAME": name,
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": "local",
                "AWS_REGION": region,
                "AWS_DEFAULT_REGION": region,
                "LAMBDA_TASK_ROOT": os.path.dirname(os.path.abspath(binary)),
            }
        )
        child_env.update(env)
        self.spawned_at = time.monotonic()
        self.proc = subprocess.Popen(
            [binary], env=child_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        threading.Thread(target=self._forward_output, daemon=True).start()
        threading.Thread(target=self._watch_exit, daemon=True).start()

    def _forward_output(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            sys.stderr.write(f"[{self.name}] {line.decode(errors='replace')}")
            sys.stderr.flush()

    def _watch_exit(self) -> None:
        code = self.proc.wait()
        log(f"{self.name} exited with code {code}")
        self.state = "failed"
        self.ready.set()
        # Fail everything waiting on this instance rather than let callers hang.
        with self.lock:
            waiting = list(self.in_flight.values())
            self.in_flight.clear()
        while True:
            try:
                inv = self.pending.get_nowait()
            except queue.Empty:
                break
            if inv is not None:
                waiting.append(inv)
        for inv in waiting:
            inv.finish(False, json.dumps({"errorType": "Runtime.ExitError", "errorMessage": f"exit code {code}"}).encode())
        self.pending.put(None)  # wake a blocked /next so its thread ends

    def invoke(self, event: bytes) -> Invocation:
        inv = Invocation(event, self.timeout)
        if self.state == "failed":
            inv.finish(False, b'{"errorType":"Runtime.Unavailable","errorMessage":"the function is not running"}')
            return inv
        self.invocations += 1
        self.pending.put(inv)
        if not inv.done.wait(self.timeout + 1):
            inv.finish(False, json.dumps({"errorType": "Sandbox.Timedout", "errorMessage": "Task timed out"}).encode())
        if not inv.ok:
            self.errors += 1
        return inv

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.server.shutdown()

    def _runtime_handler(self):
        fn = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def do_GET(self) -> None:
                if self.path != f"{RUNTIME_PREFIX}/invocation/next":
                    return self._reply(404, b'{"errorMessage":"unknown path"}')
                if fn.init_ms is None:
                    fn.init_ms = (time.monotonic() - fn.spawned_at) * 1000
                    fn.state = "ready"
                    fn.ready.set()
                inv = fn.pending.get()
                if inv is None:  # the child is gone
                    return self._reply(500, b'{"errorMessage":"shutting down"}')
                with fn.lock:
                    fn.in_flight[inv.id] = inv
                self._reply(
                    200,
                    inv.event,
                    {
                        "Lambda-Runtime-Aws-Request-Id": inv.id,
                        "Lambda-Runtime-Deadline-Ms": str(int(inv.deadline * 1000)),
                        "Lambda-Runtime-Invoked-Function-Arn": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{fn.name}",
                        "Lambda-Runtime-Trace-Id": f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0",
                    },
                )

            def do_POST(self) -> None:
                body = self._body()
                m = re.fullmatch(rf"{RUNTIME_PREFIX}/invocation/([^/]+)/(response|error)", self.path)
                if m:
                    with fn.lock:
                        inv = fn.in_flight.pop(m.group(1), None)
                    if inv is None:
                        return self._reply(400, b'{"errorMessage":"unknown request id"}')
                    inv.finish(m.group(2) == "response", body)
                    return self._reply(202, b'{"status":"OK"}')
                if self.path == f"{RUNTIME_PREFIX}/init/error":
                    log(f"{fn.name} failed to initialise: {body.decode(errors='replace')}")
                    fn.state = "failed"
                    fn.ready.set()
                    return self._reply(202, b'{"status":"OK"}')
                self._reply(404, b'{"errorMessage":"unknown path"}')

        return Handler


class Route:
    def __init__(self, method: str, path: str, function: str):
        self.method, self.path, self.function = method.upper(), path, function
        pattern = ""
        for part in path.strip("/").split("/"):
            if m := re.fullmatch(r"\{(\w+)\+\}", part):
                pattern += rf"/(?P<{m.group(1)}>.+)"
            elif m := re.fullmatch(r"\{(\w+)\}", part):
                pattern += rf"/(?P<{m.group(1)}>[^/]+)"
            else:
                pattern += "/" + re.escape(part)
        self.regex = re.compile(pattern or "/")

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if self.method not in (method.upper(), "ANY"):
            return None
        m = self.regex.fullmatch(path)
        return m.groupdict() if m else None


def routes_from_template(path: str, names: set[str]) -> tuple[list[Route], list[tuple[str, str]]]:
    import yaml  # only needed here

    class Loader(yaml.SafeLoader):
        pass

    def any_tag(loader, suffix, node):
        if isinstance(node, yaml.ScalarNode):
            return loader.construct_scalar(node)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node)
        return loader.construct_mapping(node)

    Loader.add_multi_constructor("!", any_tag)
    with open(path) as f:
        template = yaml.load(f, Loader=Loader)
    routes, rules = [], []
    for resource in (template.get("Resources") or {}).values():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        binary = ((resource.get("Metadata") or {}).get("BuildProperties") or {}).get("Binary")
        if binary not in names:
            continue
        for event in ((resource.get("Properties") or {}).get("Events") or {}).values():
            props = event.get("Properties") or {}
            if event.get("Type") == "HttpApi":
                routes.append(Route(props.get("Method", "ANY"), props["Path"], binary))
            elif event.get("Type") == "EventBridgeRule":
                for detail_type in (props.get("Pattern") or {}).get("detail-type", []):
                    rules.append((detail_type, binary))
            elif event.get("Type") in ("Schedule", "ScheduleV2"):
                # Scheduled rules deliver detail-type "Scheduled Event"; post one to /_local/events.
                rules.append(("Scheduled Event", binary))
    return routes, rules


class Emulator:
    def __init__(self, functions: dict[str, Function], routes: list[Route], rules: list[tuple[str, str]], region: str):
        self.functions, self.routes, self.rules, self.region = functions, routes, rules, region

    def api_event(self, handler: BaseHTTPRequestHandler, route: Route, params: dict[str, str], body: bytes) -> dict:
        url = urlsplit(handler.path)
        headers: dict[str, str] = {}
        for k, v in handler.headers.items():
            k = k.lower()
            headers[k] = f"{headers[k]},{v}" if k in headers else v
        cookies = [c.strip() for c in headers.pop("cookie", "").split(";") if c.strip()]
        query: dict[str, str] = {}
        for k, v in parse_qsl(url.query, keep_blank_values=True):
            query[k] = f"{query[k]},{v}" if k in query else v
        now = datetime.now(timezone.utc)
        route_key = f"{route.method} {route.path}"
        try:
            text, is_b64 = body.decode("utf-8"), False
        except UnicodeDecodeError:
            text, is_b64 = base64.b64encode(body).decode(), True
        event = {
            "version": "2.0",
            "routeKey": route_key,
            "rawPath": url.path,
            "rawQueryString": url.query,
            "headers": headers,
            "requestContext": {
                "accountId": ACCOUNT,
                "apiId": "local",
                "domainName": headers.get("host", "localhost"),
                "domainPrefix": headers.get("host", "localhost").split(".")[0],
                "http": {
                    "method": handler.command,
                    "path": url.path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": handler.client_address[0],
                    "userAgent": headers.get("user-agent", ""),
                },
                "requestId": uuid.uuid4().hex[:16] + "=",
                "routeKey": route_key,
                "stage": "$default",
                "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "timeEpoch": int(now.timestamp() * 1000),
            },
            "isBase64Encoded": is_b64,
        }
        if cookies:
            event["cookies"] = cookies
        if query:
            event["queryStringParameters"] = query
        if params:
            event["pathParameters"] = params
        if body:
            event["body"] = text
        return event

    def event_bridge(self, entry: dict) -> dict:
        detail = entry.get("Detail") or "{}"
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": entry.get("DetailType", ""),
            "source": entry.get("Source", ""),
            "account": ACCOUNT,
            "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.region,
            "resources": entry.get("Resources", []),
            "detail": json.loads(detail) if isinstance(detail, str) else detail,
        }

    def handler(self):
        emu = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args) -> None:
                log(f"{self.command} {self.path} → {args[1] if len(args) > 1 else ''}")

            def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None, cookies=()) -> None:
                self.send_response(status)
                headers = {k.lower(): v for k, v in (headers or {}).items()}
                headers.setdefault("content-type", "application/json")
                for k, v in headers.items():
                    if k not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(k, v)
                for c in cookies:
                    self.send_header("Set-Cookie", c)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _json(self, status: int, value) -> None:
                self._reply(status, json.dumps(value).encode())

            def _read_body(self) -> bytes | None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    self._json(413, {"message": "Request Entity Too Large"})
                    return None
                return self.rfile.read(length) if length else b""

            def _dispatch(self) -> None:
                body = self._read_body()
                if body is None:
                    return
                path = urlsplit(self.path).path
                if path == "/_local/health" and self.command == "GET":
                    return self._json(200, {"functions": {n: f.state for n, f in emu.functions.items()}})
                if path == "/_local/stats" and self.command == "GET":
                    return self._json(
                        200,
                        {
                            n: {"pid": f.proc.pid, "invocations": f.invocations, "errors": f.errors, "init_ms": f.init_ms}
                            for n, f in emu.functions.items()
                        },
                    )
                if path.startswith("/_local/invoke/") and self.command == "POST":
                    fn = emu.functions.get(path.rsplit("/", 1)[1])
                    if fn is None:
                        return self._json(404, {"message": "Function not found"})
                    inv = fn.invoke(body)
                    headers = {} if inv.ok else {"X-Amz-Function-Error": "Unhandled"}
                    return self._reply(200, inv.body, headers)
                if path == "/_local/events" and self.command == "POST":
                    return self._events(body)
                for route in emu.routes:
                    params = route.match(self.command, path)
                    if params is not None:
                        return self._api(route, params, body)
                self._json(404, {"message": "Not Found"})

            def _api(self, route: Route, params: dict[str, str], body: bytes) -> None:
                event = emu.api_event(self, route, params, body)
                inv = emu.functions[route.function].invoke(json.dumps(event).encode())
                if not inv.ok:
                    return self._json(502, {"message": "Internal Server Error"})
                try:
                    resp = json.loads(inv.body)
                except ValueError:
                    return self._json(502, {"message": "Internal Server Error"})
                if not isinstance(resp, dict) or "statusCode" not in resp:
                    # API Gateway's rule for payload v2: anything else is a 200 JSON body.
                    return self._reply(200, inv.body)
                out = resp.get("body") or ""
                data = base64.b64decode(out) if resp.get("isBase64Encoded") else out.encode()
                headers = dict(resp.get("headers") or {})
                for k, values in (resp.get("multiValueHeaders") or {}).items():
                    headers[k] = ",".join(values)
                self._reply(int(resp["statusCode"]), data, headers, resp.get("cookies") or [])

            def _events(self, body: bytes) -> None:
                try:
                    entries = json.loads(body or b"{}").get("Entries", [])
                except ValueError:
                    return self._json(400, {"message": "invalid JSON"})
                out, results, failed = [], [], 0
                for entry in entries:
                    event = emu.event_bridge(entry)
                    out.append({"EventId": event["id"]})
                    for detail_type, name in emu.rules:
                        if detail_type == event["detail-type"]:
                            inv = emu.functions[name].invoke(json.dumps(event).encode())
                            try:
                                response = json.loads(inv.body or b"null")
                            except ValueError:
                                response = inv.body.decode(errors="replace")
                            failed += 0 if inv.ok else 1
                            results.append({"function": name, "ok": inv.ok, "response": response})
                self._json(200, {"FailedEntryCount": failed, "Entries": out, "Results": results})

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch

        return Handler


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--function", action="append", default=[], metavar="NAME=PATH", required=True)
    p.add_argument("--http-port", type=int, default=9000)
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--route", action="append", default=[], metavar="'METHOD /path/{param}=NAME'")
    p.add_argument("--rule", action="append", default=[], metavar="DETAIL_TYPE=NAME")
    p.add_argument("--routes-from-template", metavar="TEMPLATE")
    p.add_argument("--ready-file")
    p.add_argument("--timeout-seconds", type=float, default=15.0)
    args = p.parse_args()

    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    env = dict(kv.split("=", 1) for kv in args.env)
    binaries = dict(kv.split("=", 1) for kv in args.function)
    routes = []
    for spec in args.route:
        target, name = spec.rsplit("=", 1)
        method, path = target.split(" ", 1)
        routes.append(Route(method, path, name))
    rules = [tuple(kv.rsplit("=", 1)) for kv in args.rule]
    if args.routes_from_template:
        t_routes, t_rules = routes_from_template(args.routes_from_template, set(binaries))
        routes += t_routes
        rules += t_rules

    functions = {n: Function(n, b, env, args.timeout_seconds, region) for n, b in binaries.items()}
    emulator = Emulator(functions, routes, rules, region)
    front = ThreadingHTTPServer(("127.0.0.1", args.http_port), emulator.handler())
    front.daemon_threads = True
    port = front.server_address[1]
    log(f"HTTP front door on http://127.0.0.1:{port}; routes: {[f'{r.method} {r.path}' for r in routes]}")

    def stop(*_):
        for f in functions.values():
            f.stop()
        threading.Thread(target=front.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def announce_ready():
        for f in functions.values():
            f.ready.wait()
        states = {n: f.state for n, f in functions.items()}
        log(f"functions: {states}")
        if args.ready_file and all(s == "ready" for s in states.values()):
            tmp = args.ready_file + ".tmp"
            with open(tmp, "w") as fh:
                fh.write(str(port))
            os.replace(tmp, args.ready_file)

    threading.Thread(target=announce_ready, daemon=True).start()
    front.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
