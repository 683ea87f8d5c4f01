"""Checks on infra/template.yaml that generic scanners (cfn-lint, checkov) do not make:

  async-dlq      every asynchronous trigger (EventBridge rule, schedule) of a function has a
                 dead-letter queue for events EventBridge could not deliver, and the function an
                 on-failure destination for invocations that failed every retry; every SQS queue
                 a function reads has a redrive policy
  dlq-alarm      every dead-letter queue has an alarm on its depth
  tracing        every function has X-Ray tracing on
  no-wildcard    no statement of an inline IAM policy allows an action on Resource "*"
  no-plaintext   environment variables that carry a secret are dynamic references to Secrets
                 Manager, never literals; parameters that look like secrets are NoEcho
  open-routes    the API has no authorizer, so every function checks its callers itself: the routes
                 the OpenAPI spec marks as open (security: []) are exactly the signature-verified
                 webhooks and the signed-link pages, and every other route requires the Bearer key
  link-keys      a function that serves a signed-link page (a `{token}` route) gets the signing
                 key and the public base URL it verifies and builds those links with

Usage: infra_rules.py TEMPLATE [OPENAPI]   (exit 1 with one line per violation)
"""

from __future__ import annotations

import re
import sys

import yaml

ASYNC_EVENTS = {"EventBridgeRule", "Schedule", "ScheduleV2", "CloudWatchEvent"}
SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|SIGNING_KEY|PRIVATE", re.I)
OPEN_PATH = re.compile(r"/webhooks/|/connectors/|\{token\}")


class Tagged(dict):
    """A CloudFormation intrinsic (!Ref, !GetAtt, !Sub ...) as {tag: value}."""


def load(path: str) -> dict:
    class Loader(yaml.SafeLoader):
        pass

    def intrinsic(loader, suffix, node):
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return Tagged({suffix: value})

    Loader.add_multi_constructor("!", intrinsic)
    with open(path) as f:
        return yaml.load(f, Loader=Loader)


def resources(template: dict, kind: str) -> list[tuple[str, dict]]:
    return [(name, r) for name, r in (template.get("Resources") or {}).items() if r.get("Type") == kind]


def refers_to(value, name: str) -> bool:
    """Whether an intrinsic (Ref, GetAtt, Sub) names resource `name`."""
    if isinstance(value, Tagged):
        (tag, arg), = value.items()
        if tag == "Ref":
            return arg == name
        if tag == "GetAtt":
            target = arg[0] if isinstance(arg, list) else str(arg).split(".")[0]
            return target == name
        if tag == "Sub":
            text = arg[0] if isinstance(arg, list) else arg
            return f"${{{name}}}" in text or f"${{{name}." in text
    if isinstance(value, dict):
        if "Ref" in value:
            return value["Ref"] == name
        if "Fn::GetAtt" in value:
            arg = value["Fn::GetAtt"]
            return (arg[0] if isinstance(arg, list) else str(arg).split(".")[0]) == name
    return False


def referenced_queue(value, template: dict) -> str | None:
    for name, _ in resources(template, "AWS::SQS::Queue"):
        if refers_to(value, name):
            return name
    return None


def check_async_dlq(template: dict) -> list[str]:
    out = []
    for name, fn in resources(template, "AWS::Serverless::Function"):
        props = fn.get("Properties") or {}
        events = props.get("Events") or {}
        asynchronous = {e: ev for e, ev in events.items() if ev.get("Type") in ASYNC_EVENTS}
        if asynchronous:
            on_failure = (((props.get("EventInvokeConfig") or {}).get("DestinationConfig") or {}).get("OnFailure") or {})
            if not on_failure.get("Destination"):
                out.append(f"async-dlq: {name} is invoked asynchronously but has no EventInvokeConfig on-failure destination")
        for event, ev in asynchronous.items():
            dlc = (ev.get("Properties") or {}).get("DeadLetterConfig") or {}
            if not (dlc.get("Arn") or dlc.get("Type")):
                out.append(f"async-dlq: {name}.{event} ({ev.get('Type')}) has no DeadLetterConfig")
        for event, ev in events.items():
            if ev.get("Type") == "SQS":
                queue = referenced_queue((ev.get("Properties") or {}).get("Queue"), template)
                q = (template["Resources"].get(queue) or {}).get("Properties") or {}
                if not q.get("RedrivePolicy"):
                    out.append(f"async-dlq: {name}.{event} reads queue {queue} which has no RedrivePolicy")
    return out


def dead_letter_queues(template: dict) -> set[str]:
    queues = set()
    for _, fn in resources(template, "AWS::Serverless::Function"):
        props = fn.get("Properties") or {}
        on_failure = (((props.get("EventInvokeConfig") or {}).get("DestinationConfig") or {}).get("OnFailure") or {})
        for ref in [on_failure.get("Destination")] + [
            ((ev.get("Properties") or {}).get("DeadLetterConfig") or {}).get("Arn")
            for ev in (props.get("Events") or {}).values()
        ]:
            q = referenced_queue(ref, template) if ref is not None else None
            if q:
                queues.add(q)
    return queues


def check_dlq_alarms(template: dict) -> list[str]:
    alarmed = set()
    for _, alarm in resources(template, "AWS::CloudWatch::Alarm"):
        props = alarm.get("Properties") or {}
        if props.get("Namespace") != "AWS/SQS":
            continue
        for d in props.get("Dimensions") or []:
            q = referenced_queue(d.get("Value"), template)
            if q:
                alarmed.add(q)
    return [f"dlq-alarm: dead-letter queue {q} has no depth alarm" for q in sorted(dead_letter_queues(template) - alarmed)]


def check_tracing(template: dict) -> list[str]:
    default = ((template.get("Globals") or {}).get("Function") or {}).get("Tracing")
    return [f"tracing: {name} does not have Tracing: Active"
            for name, fn in resources(template, "AWS::Serverless::Function")
            if (fn.get("Properties") or {}).get("Tracing", default) != "Active"]


def statements(template: dict):
    """(where, statement) for every statement of every inline IAM policy."""
    for name, fn in resources(template, "AWS::Serverless::Function"):
        for i, policy in enumerate((fn.get("Properties") or {}).get("Policies") or []):
            if isinstance(policy, dict) and "Statement" in policy:
                for j, st in enumerate(policy["Statement"]):
                    yield f"{name}.Policies[{i}].Statement[{j}]", st
    for kind in ("AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for name, r in resources(template, kind):
            props = r.get("Properties") or {}
            docs = [p.get("PolicyDocument") for p in props.get("Policies") or []] + [props.get("PolicyDocument")]
            for i, doc in enumerate(d for d in docs if d):
                for j, st in enumerate(doc.get("Statement") or []):
                    yield f"{name}.Policy[{i}].Statement[{j}]", st


def check_no_wildcard(template: dict) -> list[str]:
    out = []
    for where, st in statements(template):
        if st.get("Effect") != "Allow":
            continue
        res = st.get("Resource")
        res = res if isinstance(res, list) else [res]
        if any(r == "*" for r in res):
            out.append(f"no-wildcard: {where} ({st.get('Sid', 'no Sid')}) allows {st.get('Action')} on Resource \"*\"")
    return out


def is_dynamic_reference(value) -> bool:
    if isinstance(value, Tagged) and "Sub" in value:
        text = value["Sub"][0] if isinstance(value["Sub"], list) else value["Sub"]
        return text.startswith("{{resolve:secretsmanager:") or text.startswith("{{resolve:ssm-secure:")
    return isinstance(value, str) and (value.startswith("{{resolve:secretsmanager:") or value.startswith("{{resolve:ssm-secure:"))


def check_no_plaintext(template: dict) -> list[str]:
    out = []
    functions = resources(template, "AWS::Serverless::Function") + resources(template, "AWS::Lambda::Function")
    global_env = (((template.get("Globals") or {}).get("Function") or {}).get("Environment") or {}).get("Variables") or {}
    for where, variables in [("Globals", global_env)] + [
        (name, ((fn.get("Properties") or {}).get("Environment") or {}).get("Variables") or {}) for name, fn in functions
    ]:
        for var, value in variables.items():
            if SECRET_NAME.search(var) and not is_dynamic_reference(value):
                out.append(f"no-plaintext: {where} sets {var} to something other than a Secrets Manager reference")
    for name, p in (template.get("Parameters") or {}).items():
        if SECRET_NAME.search(name) and not p.get("NoEcho"):
            out.append(f"no-plaintext: parameter {name} looks like a secret but is not NoEcho")
    return out


def template_routes(template: dict) -> set[tuple[str, str]]:
    routes = set()
    for _, fn in resources(template, "AWS::Serverless::Function"):
        for ev in ((fn.get("Properties") or {}).get("Events") or {}).values():
            if ev.get("Type") == "HttpApi":
                p = ev.get("Properties") or {}
                routes.add((p.get("Method", "ANY").upper(), p["Path"]))
    return routes


def check_open_routes(template: dict, spec: dict) -> list[str]:
    out = []
    authorizers = [n for n, r in resources(template, "AWS::Serverless::HttpApi") if (r.get("Properties") or {}).get("Auth")]
    default_security = spec.get("security") or []
    for path, item in (spec.get("paths") or {}).items():
        for method, op in item.items():
            if method.lower() not in {"get", "put", "post", "delete", "patch", "head", "options"}:
                continue
            security = op.get("security", default_security)
            is_open = security == [] or any(s == {} for s in security)
            should_be_open = bool(OPEN_PATH.search(path))
            if is_open and not should_be_open:
                out.append(f"open-routes: {method.upper()} {path} is open but is neither a signed webhook nor a signed link")
            if should_be_open and not is_open:
                out.append(f"open-routes: {method.upper()} {path} is a signed webhook or link but the spec requires a key")
    if authorizers:
        out.append(f"open-routes: {authorizers} define an authorizer; the functions' own checks are the only gate this rule expects")
    spec_routes = {(m.upper(), p) for p, item in (spec.get("paths") or {}).items() for m in item
                   if m.lower() in {"get", "put", "post", "delete", "patch"}}
    for method, path in sorted(template_routes(template) - spec_routes):
        out.append(f"open-routes: {method} {path} is routed by the template but not described (and secured) in the spec")
    return out


LINK_ENV = ("AFTERCARE_SIGNING_KEY", "AFTERCARE_PUBLIC_BASE_URL")


def check_link_keys(template: dict) -> list[str]:
    out = []
    for name, fn in resources(template, "AWS::Serverless::Function"):
        props = fn.get("Properties") or {}
        pages = sorted(p["Path"] for ev in (props.get("Events") or {}).values()
                       if ev.get("Type") == "HttpApi"
                       for p in [ev.get("Properties") or {}] if "{token}" in p.get("Path", ""))
        env = ((props.get("Environment") or {}).get("Variables") or {})
        for var in LINK_ENV:
            if pages and var not in env:
                out.append(f"link-keys: {name} serves {pages[0]} but has no {var}")
    return out


def check(template: dict, spec: dict | None = None) -> list[str]:
    out = (check_async_dlq(template) + check_dlq_alarms(template) + check_tracing(template)
           + check_no_wildcard(template) + check_no_plaintext(template) + check_link_keys(template))
    if spec is not None:
        out += check_open_routes(template, spec)
    return out


def main(argv: list[str]) -> int:
    template = load(argv[1])
    spec = load(argv[2]) if len(argv) > 2 else None
    problems = check(template, spec)
    for p in problems:
        print(p)
    functions = len(resources(template, "AWS::Serverless::Function"))
    print(f"infra rules: {functions} functions, {len(dead_letter_queues(template))} dead-letter queues, "
          f"{sum(1 for _ in statements(template))} policy statements, {len(template_routes(template))} routes: "
          f"{len(problems)} violation(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
