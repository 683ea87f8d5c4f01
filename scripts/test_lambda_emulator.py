"""Tests of the Lambda emulator against a fake function that speaks the Runtime API.

Run: python3 -m unittest discover -s scripts -p 'test_*.py'
"""

import json
import os
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))

FAKE_FUNCTION = r'''#!PYTHON
import json, os, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
while True:
    with urllib.request.urlopen(api + "next") as r:
        rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
        deadline = int(r.headers["Lambda-Runtime-Deadline-Ms"])
        event = json.load(r)
    if event.get("body") == "fail" or event.get("fail"):
        out, kind = {"errorType": "Boom", "errorMessage": "asked to fail"}, "error"
    elif "detail-type" in event:
        out, kind = {"seen": event["detail-type"], "detail": event["detail"], "id": event["id"]}, "response"
    elif "requestContext" in event:
        echo = {k: event.get(k) for k in ("routeKey", "rawPath", "rawQueryString", "pathParameters", "body",
                                          "queryStringParameters", "isBase64Encoded", "cookies")}
        echo["method"] = event["requestContext"]["http"]["method"]
        echo["headers"] = event["headers"]
        echo["deadline_in_future"] = deadline > 0
        out = {"statusCode": 201, "headers": {"x-echo": "yes", "content-type": "application/json"},
               "cookies": ["a=1"], "body": json.dumps(echo)}
        kind = "response"
    else:
        out, kind = {"raw": event}, "response"
    req = urllib.request.Request(api + rid + "/" + kind, data=json.dumps(out).encode(), method="POST")
    urllib.request.urlopen(req).read()
'''

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Table:
    Type: AWS::DynamoDB::Table
  Fn:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: rust-cargolambda
      BuildProperties:
        Binary: echo
    Properties:
      Environment:
        Variables:
          TABLE: !Ref Table
      Events:
        Get:
          Type: HttpApi
          Properties:
            ApiId: !Ref HttpApi
            Method: GET
            Path: /v1/things/{thingId}
        Bus:
          Type: EventBridgeRule
          Properties:
            EventBusName: !GetAtt Bus.Name
            Pattern:
              detail-type: ["Thing Happened"]
"""


def request(url, data=None, method="GET", headers=None):
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


class EmulatorTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        fake = os.path.join(cls.tmp.name, "echo")
        with open(fake, "w") as f:
            f.write(FAKE_FUNCTION.replace("PYTHON", sys.executable))
        os.chmod(fake, os.stat(fake).st_mode | stat.S_IXUSR)
        template = os.path.join(cls.tmp.name, "template.yaml")
        with open(template, "w") as f:
            f.write(TEMPLATE)
        ready = os.path.join(cls.tmp.name, "port")
        args = [sys.executable, os.path.join(HERE, "lambda_emulator.py"), "--function", f"echo={fake}",
                "--http-port", "0", "--ready-file", ready, "--timeout-seconds", "10",
                "--route", "POST /v1/items/{proxy+}=echo", "--rule", "Manual Rule=echo"]
        try:
            import yaml  # noqa: F401
            args += ["--routes-from-template", template]
            cls.has_yaml = True
        except ImportError:
            cls.has_yaml = False
        cls.proc = subprocess.Popen(args, stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while not (os.path.exists(ready) and open(ready).read()):
            if time.time() > deadline or cls.proc.poll() is not None:
                raise RuntimeError("emulator did not become ready")
            time.sleep(0.05)
        cls.base = f"http://127.0.0.1:{open(ready).read()}"

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        cls.proc.wait(10)
        cls.tmp.cleanup()

    def test_health_reports_ready(self):
        status, _, body = request(self.base + "/_local/health")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body), {"functions": {"echo": "ready"}})

    def test_http_api_v2_event_and_response(self):
        status, headers, body = request(self.base + "/v1/items/a/b/c?x=1&x=2&y=", data=b'{"k":1}', method="POST",
                                        headers={"Content-Type": "application/json", "X-Custom": "Yes",
                                                 "Cookie": "s=1; t=2"})
        self.assertEqual(status, 201)
        self.assertEqual(headers.get("x-echo"), "yes")
        self.assertEqual(headers.get("set-cookie"), "a=1")
        echo = json.loads(body)
        self.assertEqual(echo["routeKey"], "POST /v1/items/{proxy+}")
        self.assertEqual(echo["pathParameters"], {"proxy": "a/b/c"})
        self.assertEqual(echo["rawQueryString"], "x=1&x=2&y=")
        self.assertEqual(echo["queryStringParameters"], {"x": "1,2", "y": ""})
        self.assertEqual(echo["method"], "POST")
        self.assertEqual(echo["headers"]["x-custom"], "Yes")
        self.assertEqual(echo["cookies"], ["s=1", "t=2"])
        self.assertEqual(echo["body"], '{"k":1}')
        self.assertFalse(echo["isBase64Encoded"])
        self.assertTrue(echo["deadline_in_future"])

    def test_binary_bodies_are_base64(self):
        _, _, body = request(self.base + "/v1/items/x", data=b"\xff\xfe", method="POST")
        echo = json.loads(body)
        self.assertTrue(echo["isBase64Encoded"])
        self.assertEqual(echo["body"], "//4=")

    def test_unknown_route_is_404(self):
        status, _, body = request(self.base + "/nope")
        self.assertEqual(status, 404)
        self.assertEqual(json.loads(body), {"message": "Not Found"})
        status, _, _ = request(self.base + "/v1/items/x")  # wrong method
        self.assertEqual(status, 404)

    def test_function_error_is_502(self):
        status, _, body = request(self.base + "/v1/items/x", data=b"fail", method="POST")
        self.assertEqual(status, 502)
        self.assertEqual(json.loads(body), {"message": "Internal Server Error"})

    def test_events_route_by_detail_type(self):
        entries = {"Entries": [{"Source": "s", "DetailType": "Manual Rule", "Detail": json.dumps({"a": 1})},
                               {"Source": "s", "DetailType": "Nobody Listens", "Detail": "{}"}]}
        status, _, body = request(self.base + "/_local/events", data=json.dumps(entries).encode(), method="POST")
        self.assertEqual(status, 200)
        out = json.loads(body)
        self.assertEqual(out["FailedEntryCount"], 0)
        self.assertEqual(len(out["Entries"]), 2)
        self.assertEqual(len(out["Results"]), 1)
        self.assertEqual(out["Results"][0]["response"]["seen"], "Manual Rule")
        self.assertEqual(out["Results"][0]["response"]["detail"], {"a": 1})
        self.assertEqual(out["Results"][0]["response"]["id"], out["Entries"][0]["EventId"])

    def test_direct_invoke(self):
        status, headers, body = request(self.base + "/_local/invoke/echo", data=b'{"hello":"world"}', method="POST")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body), {"raw": {"hello": "world"}})
        self.assertNotIn("x-amz-function-error", headers)
        status, headers, body = request(self.base + "/_local/invoke/echo", data=b'{"fail":true}', method="POST")
        self.assertEqual(status, 200)
        self.assertEqual(headers.get("x-amz-function-error"), "Unhandled")
        self.assertEqual(json.loads(body)["errorType"], "Boom")
        self.assertEqual(request(self.base + "/_local/invoke/ghost", data=b"{}", method="POST")[0], 404)

    def test_concurrent_requests_each_get_their_own_answer(self):
        results = {}

        def call(i):
            _, _, body = request(self.base + f"/v1/items/n{i}", data=str(i).encode(), method="POST")
            results[i] = json.loads(body)

        threads = [threading.Thread(target=call, args=(i,)) for i in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for i in range(10):
            self.assertEqual(results[i]["pathParameters"], {"proxy": f"n{i}"})
            self.assertEqual(results[i]["body"], str(i))

    def test_routes_and_rules_from_template(self):
        if not self.has_yaml:
            self.skipTest("PyYAML not installed")
        status, _, body = request(self.base + "/v1/things/t-42?q=1")
        self.assertEqual(status, 201)
        echo = json.loads(body)
        self.assertEqual(echo["routeKey"], "GET /v1/things/{thingId}")
        self.assertEqual(echo["pathParameters"], {"thingId": "t-42"})
        entries = {"Entries": [{"Source": "s", "DetailType": "Thing Happened", "Detail": "{}"}]}
        _, _, body = request(self.base + "/_local/events", data=json.dumps(entries).encode(), method="POST")
        self.assertEqual(json.loads(body)["Results"][0]["response"]["seen"], "Thing Happened")

    def test_stats_count_invocations(self):
        request(self.base + "/_local/invoke/echo", data=b"{}", method="POST")
        _, _, body = request(self.base + "/_local/stats")
        stats = json.loads(body)["echo"]
        self.assertGreaterEqual(stats["invocations"], 1)
        self.assertGreater(stats["init_ms"], 0)


if __name__ == "__main__":
    unittest.main()
