"""Benchmark peer (not product code): order-placed's essential work as a plain Python boto3 Lambda
handler — one conditional write and one SendEmail per event — with a minimal Runtime API loop, as the
Python runtime would run it."""

import json
import os
import urllib.request

import boto3

TABLE = os.environ["AFTERCARE_TABLE"]
ddb = boto3.client("dynamodb")
ses = boto3.client("sesv2")


def handler(event):
    detail = event["detail"]
    order = detail["order"]
    key = {"PK": {"S": f"M#{detail['merchant_id']}"}, "SK": {"S": f"PEER#py#{order['id']}"}}
    try:
        ddb.put_item(TableName=TABLE, Item={**key, "total": {"N": str(order["total"])}, "order": {"S": json.dumps(order)}},
                     ConditionExpression="attribute_not_exists(PK)")
    except ddb.exceptions.ConditionalCheckFailedException:
        return {"status": "duplicate"}
    lines = "\n".join(f"{i['quantity']} x {i['name']}" for i in order["items"])
    out = ses.send_email(
        FromEmailAddress=detail["from"],
        Destination={"ToAddresses": [order["customer"]["email"]]},
        Content={"Simple": {"Subject": {"Data": f"Thank you for your order {order['id']}"},
                            "Body": {"Text": {"Data": f"Thanks!\n{lines}\nTotal: {order['total']}"},
                                     "Html": {"Data": f"<p>Thanks!</p><pre>{lines}</pre>"}}}},
    )
    return {"status": "sent", "message_id": out["MessageId"]}


def main():
    api = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2018-06-01/runtime/invocation/"
    while True:
        with urllib.request.urlopen(api + "next") as r:
            rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
            event = json.load(r)
        try:
            body, kind = json.dumps(handler(event)).encode(), "response"
        except Exception as e:  # report like the runtime does
            body, kind = json.dumps({"errorType": type(e).__name__, "errorMessage": str(e)}).encode(), "error"
        urllib.request.urlopen(urllib.request.Request(api + rid + "/" + kind, data=body, method="POST")).read()


if __name__ == "__main__":
    main()
