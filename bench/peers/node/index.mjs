// Benchmark peer (not product code): order-placed's essential work as a Node AWS SDK v3 handler —
// one conditional write and one SendEmail per event — with a minimal Runtime API loop.
import { DynamoDBClient, PutItemCommand, ConditionalCheckFailedException } from "@aws-sdk/client-dynamodb";
import { SESv2Client, SendEmailCommand } from "@aws-sdk/client-sesv2";

const TABLE = process.env.AFTERCARE_TABLE;
const ddb = new DynamoDBClient({});
const ses = new SESv2Client({});

async function handler(event) {
  const { detail } = event;
  const order = detail.order;
  const key = { PK: { S: `M#${detail.merchant_id}` }, SK: { S: `PEER#node#${order.id}` } };
  try {
    await ddb.send(new PutItemCommand({
      TableName: TABLE,
      Item: { ...key, total: { N: String(order.total) }, order: { S: JSON.stringify(order) } },
      ConditionExpression: "attribute_not_exists(PK)",
    }));
  } catch (e) {
    if (e instanceof ConditionalCheckFailedException) return { status: "duplicate" };
    throw e;
  }
  const lines = order.items.map((i) => `${i.quantity} x ${i.name}`).join("\n");
  const out = await ses.send(new SendEmailCommand({
    FromEmailAddress: detail.from,
    Destination: { ToAddresses: [order.customer.email] },
    Content: { Simple: {
      Subject: { Data: `Thank you for your order ${order.id}` },
      Body: { Text: { Data: `Thanks!\n${lines}\nTotal: ${order.total}` }, Html: { Data: `<p>Thanks!</p><pre>${lines}</pre>` } },
    } },
  }));
  return { status: "sent", message_id: out.MessageId };
}

const api = `http://${process.env.AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation/`;
for (;;) {
  const next = await fetch(api + "next");
  const rid = next.headers.get("lambda-runtime-aws-request-id");
  const event = await next.json();
  let kind = "response";
  let body;
  try {
    body = JSON.stringify(await handler(event));
  } catch (e) {
    kind = "error";
    body = JSON.stringify({ errorType: e.name, errorMessage: String(e.message) });
  }
  await fetch(api + rid + "/" + kind, { method: "POST", body });
}
