//! Mutations at the wire: an HTTP client in front of the real one (to moto) that, when
//! `AFTERCARE_TEST_MUTATE=<condition id>` is set, rewrites the DynamoDB requests carrying that
//! condition so it always holds, as if the store had been built without it (`<id>+<id>…`: several
//! at once, for conditions that refuse the same write in one transaction). The conditions and
//! where they are sent come from the catalogue `tests/conditions.tsv`; `scripts/mutate-conditions`
//! runs each row's guarding test under its mutation and expects it to fail.
//!
//! The condition's text `X` becomes `(X OR attribute_exists(PK) OR attribute_not_exists(PK))`:
//! always true, and every placeholder of `X` stays used (DynamoDB refuses unused
//! `ExpressionAttributeValues`). Nothing else changes; the signature is not recomputed (moto does
//! not verify it). Without the variable, [`sdk_http_client`] is the production client itself.

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use serde_json::Value;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// The condition id to mutate (a row of `tests/conditions.tsv`).
pub const MUTATE: &str = "AFTERCARE_TEST_MUTATE";

/// A file each applied mutation appends one line to (`<id>\t<operation>\t<PK> <SK>`), so the
/// runner tells a mutation no request reached from one the test did not notice.
pub const MUTATE_LOG: &str = "AFTERCARE_TEST_MUTATE_LOG";

/// The catalogue of every condition expression in `shared/src/adapters/store/`.
pub const CATALOGUE: &str = "tests/conditions.tsv";

/// One row of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// Stable id, `<store file>.<what it guards>`.
    pub id: String,
    /// The file under `shared/src/adapters/store/`.
    pub file: String,
    /// The text in that file this row accounts for (see `scripts/mutate-conditions`).
    pub source: String,
    /// `Put`, `Update`, `Delete` or `ConditionCheck` (a single-item call or a transaction entry).
    pub op: String,
    /// Text the item's `<PK> <SK>` contains.
    pub key: String,
    /// The condition (or conjunct) as sent, the text the mutation makes always true.
    pub condition: String,
    /// The test that fails when the condition is removed, `binary::name`.
    pub test: String,
    /// What the condition prevents.
    pub prevents: String,
}

/// Reads the catalogue: tab-separated, `#` starts a comment line, the first line is the header.
pub fn catalogue() -> Vec<Condition> {
    let path = crate::root().join(CATALOGUE);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse(&text)
}

fn parse(text: &str) -> Vec<Condition> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .skip(1)
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), 8, "{CATALOGUE}: 8 columns expected: {line}");
            Condition {
                id: f[0].into(),
                file: f[1].into(),
                source: f[2].into(),
                op: f[3].into(),
                key: f[4].into(),
                condition: f[5].into(),
                test: f[6].into(),
                prevents: f[7].into(),
            }
        })
        .collect()
}

/// Environment variable naming a file to which, without mutating anything, every request that
/// carries a catalogued condition appends `<id>\t<binary>::<test>`: which tests reach which
/// condition (`scripts/mutate-conditions --trace`).
pub const TRACE: &str = "AFTERCARE_TEST_CONDITIONS_TRACE";

/// The rows `ids` names: one id, or several joined by `+` (a joint mutation: conditions that
/// refuse the same write in one transaction, removed together). An unknown id panics.
pub fn rows_named(ids: &str) -> Vec<Condition> {
    let all = catalogue();
    ids.split('+')
        .map(str::trim)
        .map(|id| {
            all.iter()
                .find(|c| c.id == id)
                .cloned()
                .unwrap_or_else(|| panic!("{MUTATE}={ids}: no condition {id} in {CATALOGUE}"))
        })
        .collect()
}

/// Races registered by the test process: the row whose condition's request, when it is about to be
/// sent, is preceded by another writer deleting the item that condition is on (once).
static RACES: Mutex<Vec<(Condition, Competing)>> = Mutex::new(Vec::new());

/// What the other writer of a race does to the item, just before the request under test.
#[derive(Debug, Clone)]
enum Competing {
    Delete,
    /// A `PutItem` of the very item the request under test puts, with these attributes (DynamoDB
    /// JSON) in place of its own: another delivery's record of the same thing.
    Put {
        overrides: Value,
    },
    /// An `UpdateItem` with this update expression, names and values (DynamoDB JSON).
    Update {
        expression: String,
        names: Value,
        values: Value,
    },
}

/// Another writer deletes the item the condition `id` is on just before the first request carrying
/// that condition is sent (e.g. a suppression lifted between the two attempts of a guarded claim):
/// the race a read-then-write use-case only meets by chance, made to happen. Call it before
/// [`crate::Env::new`] (whose SDK clients then go through [`Mutate`]); an unknown id panics.
pub fn delete_before(id: &str) {
    race_before(id, Competing::Delete);
}

/// Another writer updates the item the condition `id` is on (`expression`, with `names` and
/// `values` in DynamoDB's JSON, e.g. `{":m": {"S": "other"}}`) just before the first request
/// carrying that condition is sent: a record settled, a revision made, meanwhile. Call it before
/// [`crate::Env::new`]; an unknown id panics.
pub fn update_before(id: &str, expression: &str, names: Value, values: Value) {
    race_before(
        id,
        Competing::Update {
            expression: expression.to_owned(),
            names,
            values,
        },
    );
}

/// Another writer puts the item the condition `id` is on (the item the request under test puts,
/// with `overrides` in DynamoDB's JSON, e.g. `{"status": {"S": "sent"}}`) just before the first
/// request carrying that condition is sent. Call it before [`crate::Env::new`].
pub fn put_before(id: &str, overrides: Value) {
    race_before(id, Competing::Put { overrides });
}

fn race_before(id: &str, competing: Competing) {
    let rows = rows_named(id);
    RACES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .extend(rows.into_iter().map(|row| (row, competing.clone())));
}

/// The competing request of a race armed on a condition this request carries: its operation and
/// body.
fn take_race(operation: &str, body: &[u8]) -> Option<(&'static str, Value)> {
    let mut races = RACES.lock().unwrap_or_else(|e| e.into_inner());
    let (at, request) = races.iter().enumerate().find_map(|(i, (row, competing))| {
        let mut json: Value = serde_json::from_slice(body).ok()?;
        let entries: Vec<(&str, Value)> = match operation {
            "PutItem" | "UpdateItem" | "DeleteItem" => {
                vec![(operation.trim_end_matches("Item"), json.take())]
            }
            "TransactWriteItems" => json
                .get_mut("TransactItems")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
                .flat_map(|e| {
                    ["Put", "Update", "Delete", "ConditionCheck"]
                        .into_iter()
                        .filter_map(|op| e.get(op).cloned().map(|inner| (op, inner)))
                        .collect::<Vec<_>>()
                })
                .collect(),
            _ => Vec::new(),
        };
        entries.into_iter().find_map(|(op, mut entry)| {
            mutate_entry(row, op, &mut entry.clone())?;
            let item = entry.get("Item").or_else(|| entry.get("Key"))?;
            let key = serde_json::json!({"PK": item.get("PK")?, "SK": item.get("SK")?});
            let table = entry.get_mut("TableName")?.take();
            let request = match competing {
                Competing::Put { overrides } => {
                    let mut item = entry.get("Item")?.clone();
                    for (name, value) in overrides.as_object()? {
                        item[name] = value.clone();
                    }
                    (
                        "PutItem",
                        serde_json::json!({"TableName": table, "Item": item}),
                    )
                }
                Competing::Delete => (
                    "DeleteItem",
                    serde_json::json!({"TableName": table, "Key": key}),
                ),
                Competing::Update {
                    expression,
                    names,
                    values,
                } => {
                    let mut update = serde_json::json!({
                        "TableName": table, "Key": key, "UpdateExpression": expression,
                        "ExpressionAttributeValues": values,
                    });
                    if names.as_object().is_some_and(|n| !n.is_empty()) {
                        update["ExpressionAttributeNames"] = names.clone();
                    }
                    ("UpdateItem", update)
                }
            };
            Some((i, request))
        })
    })?;
    races.remove(at);
    Some(request)
}

/// The HTTP client for the harness's SDK config: the production one, wrapped by [`Mutate`] only
/// when [`MUTATE`] names conditions (an unknown id panics: a typo must not pass as "caught") or
/// [`TRACE`] is set.
pub fn sdk_http_client() -> SharedHttpClient {
    let inner = aftercare::adapters::aws::http_client();
    if let Ok(ids) = std::env::var(MUTATE) {
        return SharedHttpClient::new(Mutate::new(inner, rows_named(&ids), Mode::Mutate));
    }
    if std::env::var_os(TRACE).is_some() {
        return SharedHttpClient::new(Mutate::new(inner, catalogue(), Mode::Trace));
    }
    if !RACES.lock().unwrap_or_else(|e| e.into_inner()).is_empty() {
        return SharedHttpClient::new(Mutate::new(inner, Vec::new(), Mode::Mutate));
    }
    inner
}

/// What [`Mutate`] does with a request carrying one of its conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Make the conditions always true (one row, or the rows of a joint mutation).
    Mutate,
    /// Send it unchanged, noting which test reached which condition.
    Trace,
}

/// The mutating (or tracing) HTTP client.
#[derive(Debug, Clone)]
pub struct Mutate {
    inner: SharedHttpClient,
    rows: Arc<Vec<Condition>>,
    mode: Mode,
}

impl Mutate {
    pub fn new(inner: SharedHttpClient, rows: Vec<Condition>, mode: Mode) -> Self {
        Self {
            inner,
            rows: Arc::new(rows),
            mode,
        }
    }
}

impl HttpClient for Mutate {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(MutateConnector {
            inner: self.inner.http_connector(settings, components),
            rows: self.rows.clone(),
            mode: self.mode,
        })
    }
}

#[derive(Debug)]
struct MutateConnector {
    inner: SharedHttpConnector,
    rows: Arc<Vec<Condition>>,
    mode: Mode,
}

impl HttpConnector for MutateConnector {
    fn call(&self, mut request: HttpRequest) -> HttpConnectorFuture {
        let operation = request
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.strip_prefix("DynamoDB_20120810."))
            .map(str::to_owned);
        let Some(operation) = operation else {
            return self.inner.call(request);
        };
        let race = request
            .body()
            .bytes()
            .and_then(|body| take_race(&operation, body));
        for row in self.rows.iter() {
            let rewritten = request
                .body()
                .bytes()
                .and_then(|body| rewrite(row, &operation, body));
            let Some((body, hits)) = rewritten else {
                continue;
            };
            match self.mode {
                Mode::Trace => append(TRACE, &format!("{}\t{}\n", row.id, current_test())),
                Mode::Mutate => {
                    for hit in &hits {
                        append(MUTATE_LOG, &format!("{}\t{operation}\t{hit}\n", row.id));
                    }
                    let len = body.len().to_string();
                    *request.body_mut() = SdkBody::from(body);
                    request.headers_mut().insert("content-length", len);
                }
            }
        }
        let Some((competing, competing_body)) = race else {
            return self.inner.call(request);
        };
        // The other writer's request goes first, signed like this request (moto does not check).
        let inner = self.inner.clone();
        HttpConnectorFuture::new(async move {
            let mut other = request
                .try_clone()
                .expect("a DynamoDB request body is in memory");
            let body = serde_json::to_vec(&competing_body).expect("json");
            other
                .headers_mut()
                .insert("x-amz-target", format!("DynamoDB_20120810.{competing}"));
            other
                .headers_mut()
                .insert("content-length", body.len().to_string());
            *other.body_mut() = SdkBody::from(body);
            let answer = inner.call(other).await?;
            assert_eq!(answer.status().as_u16(), 200, "the competing {competing}");
            inner.call(request).await
        })
    }
}

/// `<binary>::<test>` of this test process (nextest runs one test per process).
fn current_test() -> String {
    let binary = std::env::var("NEXTEST_BINARY_ID")
        .ok()
        .and_then(|b| b.rsplit("::").next().map(str::to_owned))
        .unwrap_or_default();
    let test = std::env::var("NEXTEST_TEST_NAME").ok().unwrap_or_else(|| {
        std::env::args()
            .skip(1)
            .find(|a| !a.starts_with('-'))
            .unwrap_or_default()
    });
    format!("{binary}::{test}")
}

/// Appends `line` to the file the environment variable `var` names, if set.
fn append(var: &str, line: &str) {
    let Ok(path) = std::env::var(var) else {
        return;
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    file.write_all(line.as_bytes()).unwrap();
}

/// The always-true form of `condition`.
pub fn neutralised(condition: &str) -> String {
    format!("({condition} OR attribute_exists(PK) OR attribute_not_exists(PK))")
}

fn string_attr(item: &Value, name: &str) -> String {
    item.get(name)
        .and_then(|v| v.get("S"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Whether `haystack` matches the row's `key`: `&&`-separated parts, each contained in it
/// (`!part`: not contained; `a || b`: either).
fn key_matches(pattern: &str, haystack: &str) -> bool {
    pattern
        .split("&&")
        .map(str::trim)
        .all(|part| match part.strip_prefix('!') {
            Some(absent) => !haystack.contains(absent),
            None => part
                .split("||")
                .map(str::trim)
                .any(|p| haystack.contains(p)),
        })
}

/// Mutates `entry` (a request, or one transaction entry's body) if it is `op` on a matching item
/// and its condition carries the row's text; answers the item's `<PK>|<SK>`. The row's `key` is
/// matched against `<PK>|<SK>|<UpdateExpression>|<the put item's status>`.
fn mutate_entry(row: &Condition, op: &str, entry: &mut Value) -> Option<String> {
    if op != row.op {
        return None;
    }
    let item = entry.get("Item").or_else(|| entry.get("Key"))?;
    let key = format!("{}|{}", string_attr(item, "PK"), string_attr(item, "SK"));
    let haystack = format!(
        "{key}|{}|{}",
        entry
            .get("UpdateExpression")
            .and_then(Value::as_str)
            .unwrap_or_default(),
        string_attr(item, "status"),
    );
    if !key_matches(&row.key, &haystack) {
        return None;
    }
    let expression = entry.get("ConditionExpression")?.as_str()?;
    if !expression.contains(&row.condition) {
        return None;
    }
    let mutated = expression.replace(&row.condition, &neutralised(&row.condition));
    entry["ConditionExpression"] = Value::String(mutated);
    Some(key)
}

/// The body of a DynamoDB `operation` request with the row's condition neutralised, and the keys
/// it was neutralised on; `None` when the request does not carry it.
pub fn rewrite(row: &Condition, operation: &str, body: &[u8]) -> Option<(Vec<u8>, Vec<String>)> {
    let mut json: Value = serde_json::from_slice(body).ok()?;
    let mut hits = Vec::new();
    match operation {
        "PutItem" | "UpdateItem" | "DeleteItem" => {
            let op = operation.trim_end_matches("Item");
            hits.extend(mutate_entry(row, op, &mut json));
        }
        "TransactWriteItems" => {
            for entry in json
                .get_mut("TransactItems")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                for op in ["Put", "Update", "Delete", "ConditionCheck"] {
                    if let Some(inner) = entry.get_mut(op) {
                        hits.extend(mutate_entry(row, op, inner));
                    }
                }
            }
        }
        _ => {}
    }
    if hits.is_empty() {
        return None;
    }
    Some((serde_json::to_vec(&json).ok()?, hits))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(op: &str, key: &str, condition: &str) -> Condition {
        Condition {
            id: "x.y".into(),
            file: "x.rs".into(),
            source: condition.into(),
            op: op.into(),
            key: key.into(),
            condition: condition.into(),
            test: "b::t".into(),
            prevents: String::new(),
        }
    }

    #[test]
    fn a_matching_transaction_entry_gets_an_always_true_condition_and_nothing_else_changes() {
        let body = serde_json::json!({"TransactItems": [
            {"Put": {"TableName": "t", "Item": {"PK": {"S": "M#a#C#c"}, "SK": {"S": "LEDGER#order:1"}},
                     "ConditionExpression": "attribute_not_exists(PK)"}},
            {"Put": {"TableName": "t", "Item": {"PK": {"S": "M#a#O#1"}, "SK": {"S": "ORDER"}},
                     "ConditionExpression": "attribute_not_exists(PK)"}},
            {"Update": {"TableName": "t", "Key": {"PK": {"S": "M#a#C#c"}, "SK": {"S": "LEDGER#order:2"}},
                     "ConditionExpression": "version = :v", "UpdateExpression": "SET a = :v",
                     "ExpressionAttributeValues": {":v": {"N": "1"}}}}
        ]});
        let r = row("Put", "|LEDGER#", "attribute_not_exists(PK)");
        let (out, hits) = rewrite(
            &r,
            "TransactWriteItems",
            &serde_json::to_vec(&body).unwrap(),
        )
        .unwrap();
        assert_eq!(hits, ["M#a#C#c|LEDGER#order:1"]);
        let out: Value = serde_json::from_slice(&out).unwrap();
        let mut expected = body.clone();
        expected["TransactItems"][0]["Put"]["ConditionExpression"] =
            neutralised("attribute_not_exists(PK)").into();
        assert_eq!(out, expected);
    }

    #[test]
    fn a_conjunct_is_neutralised_in_place_on_single_item_calls() {
        let body = serde_json::json!({"TableName": "t",
            "Key": {"PK": {"S": "M#a#INV#1"}, "SK": {"S": "INV"}},
            "ConditionExpression": "DUESK = :seen AND #status = :failed"});
        let r = row("Update", "|INV && !|SUB|", "DUESK = :seen");
        let (out, _) = rewrite(&r, "UpdateItem", &serde_json::to_vec(&body).unwrap()).unwrap();
        let out: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            out["ConditionExpression"],
            "(DUESK = :seen OR attribute_exists(PK) OR attribute_not_exists(PK)) AND #status = :failed"
        );
        assert!(rewrite(&r, "PutItem", &serde_json::to_vec(&body).unwrap()).is_none());
        assert!(
            rewrite(
                &row("Update", "#SUB#", "DUESK = :seen"),
                "UpdateItem",
                &serde_json::to_vec(&body).unwrap()
            )
            .is_none()
        );
    }

    #[test]
    fn a_joint_mutation_names_each_of_its_rows() {
        let rows = rows_named("orders.idempotency_new+orders.order_new");
        let ids: Vec<_> = rows.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["orders.idempotency_new", "orders.order_new"]);
    }

    #[test]
    fn the_catalogue_parses_and_its_ids_are_unique() {
        let rows = catalogue();
        assert!(!rows.is_empty());
        let mut ids: Vec<_> = rows.iter().map(|r| r.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), rows.len(), "duplicate ids in {CATALOGUE}");
        for r in &rows {
            assert!(
                ["Put", "Update", "Delete", "ConditionCheck"].contains(&r.op.as_str()),
                "{}: op {}",
                r.id,
                r.op
            );
            assert!(r.test.contains("::"), "{}: test is binary::name", r.id);
        }
    }
}
