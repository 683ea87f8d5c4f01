"""infra_rules.py: the real template passes, and each rule catches the violation it exists for."""

import copy
import os
import unittest

import infra_rules as rules

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATE = rules.load(os.path.join(ROOT, "infra", "template.yaml"))


def function(t, name="OrderPlacedFunction"):
    return t["Resources"][name]["Properties"]


class RealTemplate(unittest.TestCase):
    def test_passes_every_rule(self):
        self.assertEqual(rules.check(TEMPLATE), [])

    def test_sees_every_function_and_queue(self):
        self.assertEqual(len(rules.resources(TEMPLATE, "AWS::Serverless::Function")), 6)
        self.assertEqual(len(rules.dead_letter_queues(TEMPLATE)), 6)


class EachRuleBites(unittest.TestCase):
    def setUp(self):
        self.t = copy.deepcopy(TEMPLATE)

    def assertViolation(self, prefix):
        problems = rules.check(self.t)
        self.assertTrue(any(p.startswith(prefix) for p in problems), problems)

    def test_a_rule_without_a_dead_letter_queue(self):
        del function(self.t)["Events"]["OrderPlacedEvent"]["Properties"]["DeadLetterConfig"]
        self.assertViolation("async-dlq: OrderPlacedFunction.OrderPlacedEvent")

    def test_an_async_function_without_an_on_failure_destination(self):
        del function(self.t, "SurveySenderFunction")["EventInvokeConfig"]
        self.assertViolation("async-dlq: SurveySenderFunction")

    def test_an_sqs_source_without_redrive(self):
        self.t["Resources"]["WorkQueue"] = {"Type": "AWS::SQS::Queue", "Properties": {}}
        function(self.t)["Events"]["Work"] = {"Type": "SQS", "Properties": {"Queue": rules.Tagged({"GetAtt": "WorkQueue.Arn"})}}
        self.assertViolation("async-dlq: OrderPlacedFunction.Work reads queue WorkQueue")

    def test_a_dead_letter_queue_without_an_alarm(self):
        del self.t["Resources"]["OrderPlacedDeadLetterAlarm"]
        self.assertViolation("dlq-alarm: dead-letter queue OrderPlacedDeadLetterQueue")

    def test_tracing_off(self):
        function(self.t)["Tracing"] = "PassThrough"
        self.assertViolation("tracing: OrderPlacedFunction")

    def test_a_wildcard_resource(self):
        function(self.t)["Policies"][0]["Statement"].append(
            {"Effect": "Allow", "Action": "dynamodb:Scan", "Resource": "*"})
        self.assertViolation("no-wildcard: OrderPlacedFunction")

    def test_a_literal_secret(self):
        function(self.t)["Environment"]["Variables"]["AFTERCARE_SIGNING_KEY"] = "hunter2hunter2hunter2hunter2hunter2"
        self.assertViolation("no-plaintext: OrderPlacedFunction sets AFTERCARE_SIGNING_KEY")

    def test_a_secret_parameter_that_echoes(self):
        self.t["Parameters"]["WebhookSecret"] = {"Type": "String"}
        self.assertViolation("no-plaintext: parameter WebhookSecret")


class OpenRoutes(unittest.TestCase):
    def spec(self, paths):
        return {"security": [{"bearerAuth": []}], "paths": paths}

    def template(self, routes):
        events = {f"E{i}": {"Type": "HttpApi", "Properties": {"Method": m, "Path": p}} for i, (m, p) in enumerate(routes)}
        return {"Resources": {"F": {"Type": "AWS::Serverless::Function", "Properties": {"Events": events}}}}

    def test_signed_routes_open_and_the_rest_keyed(self):
        t = self.template([("GET", "/v1/orders/{orderId}"), ("POST", "/v1/webhooks/stripe/{merchantId}"),
                           ("GET", "/v1/survey/{token}"), ("GET", "/v1/track/{token}")])
        spec = self.spec({"/v1/orders/{orderId}": {"get": {}},
                          "/v1/webhooks/stripe/{merchantId}": {"post": {"security": []}},
                          "/v1/survey/{token}": {"get": {"security": []}},
                          "/v1/track/{token}": {"get": {"security": []}}})
        self.assertEqual(rules.check_open_routes(t, spec), [])

    def test_a_keyed_tracking_page_is_refused(self):
        t = self.template([("GET", "/v1/track/{token}")])
        spec = self.spec({"/v1/track/{token}": {"get": {}}})
        self.assertIn("requires a key", rules.check_open_routes(t, spec)[0])

    def test_an_open_merchant_route_is_refused(self):
        t = self.template([("GET", "/v1/feedback")])
        spec = self.spec({"/v1/feedback": {"get": {"security": []}}})
        self.assertEqual(len(rules.check_open_routes(t, spec)), 1)

    def test_a_route_missing_from_the_spec_is_refused(self):
        t = self.template([("DELETE", "/v1/suppressions/{email}")])
        self.assertIn("not described", rules.check_open_routes(t, self.spec({}))[0])


class LinkKeys(unittest.TestCase):
    def function(self, path, env):
        return {"Resources": {"F": {"Type": "AWS::Serverless::Function", "Properties": {
            "Environment": {"Variables": env},
            "Events": {"Page": {"Type": "HttpApi", "Properties": {"Method": "GET", "Path": path}}}}}}}

    def test_a_page_function_needs_the_signing_key_and_base_url(self):
        t = self.function("/v1/track/{token}", {"AFTERCARE_PUBLIC_BASE_URL": "x"})
        self.assertEqual(rules.check_link_keys(t),
                         ["link-keys: F serves /v1/track/{token} but has no AFTERCARE_SIGNING_KEY"])
        keyed = self.function("/v1/track/{token}", {"AFTERCARE_PUBLIC_BASE_URL": "x", "AFTERCARE_SIGNING_KEY": "y"})
        self.assertEqual(rules.check_link_keys(keyed), [])

    def test_other_routes_need_no_key(self):
        self.assertEqual(rules.check_link_keys(self.function("/v1/orders/{orderId}", {})), [])


if __name__ == "__main__":
    unittest.main()
