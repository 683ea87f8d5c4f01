//! The infrastructure template and the workspace agree: every function package is deployed with
//! the right binary, runtime and architecture; the template sets only environment keys the code
//! reads; routes and event patterns are the ones the handlers serve; the table has the key schema,
//! indexes and TTL attribute the store uses.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly

use aftercare_tests::infra::{resources_of_type, table_shape, template};
use aftercare_tests::root;
use serde_norway::Value;
use std::collections::{BTreeMap, BTreeSet};

/// What each function's handler serves: (HTTP routes, EventBridge detail-types).
fn served() -> BTreeMap<&'static str, (Vec<&'static str>, Vec<&'static str>)> {
    BTreeMap::from([
        (
            "email-events",
            (
                email_events::ROUTES.to_vec(),
                email_events::DETAIL_TYPES.to_vec(),
            ),
        ),
        (
            "order-placed",
            (
                order_placed::ROUTES.to_vec(),
                vec![
                    order_placed::DETAIL_TYPE,
                    order_placed::shopify::EVENTBRIDGE_DETAIL_TYPE,
                ],
            ),
        ),
        (
            "shipment-update",
            (
                shipment_update::ROUTES.to_vec(),
                vec![
                    shipment_update::DETAIL_TYPE,
                    shipment_update::SCHEDULE_DETAIL_TYPE,
                ],
            ),
        ),
        (
            "renewal-checker",
            (
                renewal_checker::ROUTES.to_vec(),
                vec![
                    renewal_checker::DETAIL_TYPE,
                    renewal_checker::SCHEDULE_DETAIL_TYPE,
                ],
            ),
        ),
        (
            "billing-alert",
            (
                billing_alert::ROUTES.to_vec(),
                vec![billing_alert::SCHEDULE_DETAIL_TYPE],
            ),
        ),
        (
            "survey-sender",
            (
                survey_sender::ROUTES.to_vec(),
                vec![survey_sender::SCHEDULE_DETAIL_TYPE],
            ),
        ),
    ])
}

fn function_packages() -> BTreeSet<String> {
    std::fs::read_dir(root().join("functions"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

fn functions(t: &Value) -> BTreeMap<String, Value> {
    resources_of_type(t, "AWS::Serverless::Function")
        .into_iter()
        .map(|(_, f)| {
            (
                f["Metadata"]["BuildProperties"]["Binary"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                f,
            )
        })
        .collect()
}

#[test]
fn every_function_package_is_deployed_from_its_binary() {
    let t = template();
    let fns = functions(&t);
    assert_eq!(
        fns.keys().cloned().collect::<BTreeSet<_>>(),
        function_packages()
    );
    assert_eq!(
        served()
            .keys()
            .map(|k| k.to_string())
            .collect::<BTreeSet<_>>(),
        function_packages()
    );
    let globals = &t["Globals"]["Function"];
    for (binary, f) in &fns {
        let manifest =
            std::fs::read_to_string(root().join("functions").join(binary).join("Cargo.toml"))
                .unwrap();
        assert!(
            manifest.contains(&format!("name = \"{binary}\"")),
            "package name == binary name for {binary}"
        );
        assert_eq!(
            f["Metadata"]["BuildMethod"].as_str(),
            Some("rust-cargolambda"),
            "{binary}"
        );
        let prop = |k: &str| {
            f["Properties"]
                .get(k)
                .cloned()
                .unwrap_or_else(|| globals[k].clone())
        };
        assert_eq!(
            prop("Runtime").as_str(),
            Some("provided.al2023"),
            "{binary}"
        );
        assert_eq!(prop("Architectures")[0].as_str(), Some("arm64"), "{binary}");
        assert_eq!(prop("Handler").as_str(), Some("bootstrap"), "{binary}");
    }
}

#[test]
fn environment_keys_are_ones_the_code_reads() {
    let t = template();
    let mut keys: BTreeSet<String> = BTreeSet::new();
    let mut collect = |env: &Value| {
        if let Some(vars) = env["Variables"].as_mapping() {
            keys.extend(vars.keys().map(|k| k.as_str().unwrap().to_owned()));
        }
    };
    collect(&t["Globals"]["Function"]["Environment"]);
    for f in functions(&t).values() {
        collect(&f["Properties"]["Environment"]);
    }
    let known: BTreeSet<&str> = aftercare::config::ENV_KEYS
        .iter()
        .copied()
        .chain(["RUST_LOG"])
        .collect();
    for k in &keys {
        assert!(
            known.contains(k.as_str()),
            "the template sets {k}, which no code reads"
        );
    }
    assert!(
        keys.contains(aftercare::config::TABLE),
        "every function gets the table name"
    );
}

#[test]
fn routes_and_event_patterns_match_the_handlers() {
    let t = template();
    for (binary, f) in functions(&t) {
        let (routes, detail_types) = served().remove(binary.as_str()).unwrap();
        let mut t_routes = BTreeSet::new();
        let mut t_details = BTreeSet::new();
        for (_, ev) in f["Properties"]["Events"]
            .as_mapping()
            .cloned()
            .unwrap_or_default()
        {
            match ev["Type"].as_str().unwrap() {
                "HttpApi" => {
                    let p = &ev["Properties"];
                    t_routes.insert(format!(
                        "{} {}",
                        p["Method"].as_str().unwrap().to_uppercase(),
                        p["Path"].as_str().unwrap()
                    ));
                }
                "EventBridgeRule" => {
                    for d in ev["Properties"]["Pattern"]["detail-type"]
                        .as_sequence()
                        .unwrap()
                    {
                        t_details.insert(d.as_str().unwrap().to_owned());
                    }
                }
                // Scheduled rules deliver `detail-type: "Scheduled Event"`.
                "Schedule" | "ScheduleV2" => {
                    t_details.insert("Scheduled Event".to_owned());
                }
                other => panic!("{binary}: unexpected event type {other}"),
            }
        }
        assert_eq!(
            t_routes,
            routes.iter().map(|r| r.to_string()).collect(),
            "{binary} routes"
        );
        assert_eq!(
            t_details,
            detail_types.iter().map(|d| d.to_string()).collect(),
            "{binary} detail-types"
        );
    }
}

#[test]
fn the_table_is_the_one_the_store_uses() {
    use aftercare::adapters::store::{keys, schema};
    let (primary, indexes, ttl) = table_shape();
    assert_eq!(
        primary,
        vec![schema::PRIMARY.0.to_owned(), schema::PRIMARY.1.to_owned()]
    );
    let expected: Vec<(String, String, String)> = schema::INDEXES
        .iter()
        .map(|i| (i.name.to_owned(), i.hash.to_owned(), i.range.to_owned()))
        .collect();
    assert_eq!(indexes, expected);
    assert_eq!(ttl, keys::TTL);
}

/// `docs/openapi.yaml` describes exactly the template's HTTP API: one operation per route, no
/// more, no less; the signed routes (links carrying `{token}`, provider webhooks) without the
/// Bearer key and every other route with it; and each path's parameters are the ones it names.
#[test]
fn the_openapi_spec_describes_exactly_the_templates_routes() {
    let t = template();
    let mut t_routes = BTreeSet::new();
    for (binary, f) in functions(&t) {
        for (_, ev) in f["Properties"]["Events"]
            .as_mapping()
            .cloned()
            .unwrap_or_default()
        {
            if ev["Type"].as_str() == Some("HttpApi") {
                let p = &ev["Properties"];
                let method = p["Method"].as_str().unwrap().to_uppercase();
                let path = p["Path"].as_str().unwrap().to_owned();
                assert!(
                    t_routes.insert((method.clone(), path.clone())),
                    "{binary}: {method} {path} routed twice"
                );
            }
        }
    }

    let path = root().join("docs/openapi.yaml");
    let spec: Value = serde_norway::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(spec["openapi"].as_str(), Some("3.1.0"));
    let bearer = spec["security"][0]
        .as_mapping()
        .is_some_and(|m| m.contains_key("bearerAuth"));
    assert!(bearer, "the Bearer key is the default");
    assert!(spec["components"]["securitySchemes"]["bearerAuth"].is_mapping());
    const METHODS: [&str; 8] = [
        "get", "put", "post", "delete", "patch", "head", "options", "trace",
    ];
    let resolve = |p: &Value| -> Value {
        match p["$ref"].as_str() {
            Some(r) => {
                let name = r.strip_prefix("#/components/parameters/").unwrap();
                spec["components"]["parameters"][name].clone()
            }
            None => p.clone(),
        }
    };
    let mut s_routes = BTreeSet::new();
    for (path, item) in spec["paths"].as_mapping().unwrap() {
        let path = path.as_str().unwrap();
        let named: BTreeSet<String> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(str::to_owned)
            .collect();
        let shared = item["parameters"]
            .as_sequence()
            .cloned()
            .unwrap_or_default();
        for (method, op) in item.as_mapping().unwrap() {
            let method = method.as_str().unwrap();
            if !METHODS.contains(&method) {
                continue;
            }
            let route = format!("{} {path}", method.to_uppercase());
            s_routes.insert((method.to_uppercase(), path.to_owned()));
            let params = op["parameters"].as_sequence().cloned().unwrap_or_default();
            let in_path: BTreeSet<String> = shared
                .iter()
                .chain(params.iter())
                .map(&resolve)
                .filter(|p| p["in"].as_str() == Some("path"))
                .map(|p| {
                    assert_eq!(p["required"].as_bool(), Some(true), "{route}");
                    p["name"].as_str().unwrap().to_owned()
                })
                .collect();
            assert_eq!(in_path, named, "{route}: path parameters");
            let signed = named.contains("token")
                || path.starts_with("/v1/webhooks/")
                || path.starts_with("/v1/connectors/");
            let anonymous = op["security"].as_sequence().is_some_and(|s| s.is_empty());
            assert_eq!(
                anonymous, signed,
                "{route}: signed links and webhooks take no Bearer key, everything else does"
            );
            assert!(
                op["responses"].as_mapping().is_some_and(|r| !r.is_empty()),
                "{route}: responses"
            );
        }
    }
    let only_spec: Vec<_> = s_routes.difference(&t_routes).collect();
    let only_template: Vec<_> = t_routes.difference(&s_routes).collect();
    assert!(
        only_spec.is_empty() && only_template.is_empty(),
        "docs/openapi.yaml and infra/template.yaml disagree: only in the spec {only_spec:?}, \
         only in the template {only_template:?}"
    );
}

/// A function that serves a signed-link page (a `{token}` route) verifies its token with the
/// signing key and builds links under the public base URL, so it gets both (and the key only as
/// the dynamic reference to the secret, never a literal); shipment-update serves the tracking
/// page, open like every other signed link.
#[test]
fn functions_serving_signed_link_pages_get_the_signing_key() {
    let t = template();
    let mut pages = BTreeSet::new();
    for (binary, f) in functions(&t) {
        let events = f["Properties"]["Events"]
            .as_mapping()
            .cloned()
            .unwrap_or_default();
        let serves_pages = events.values().any(|ev| {
            ev["Type"].as_str() == Some("HttpApi")
                && ev["Properties"]["Path"]
                    .as_str()
                    .is_some_and(|p| p.contains("{token}"))
        });
        if !serves_pages {
            continue;
        }
        pages.insert(binary.clone());
        let env = &f["Properties"]["Environment"]["Variables"];
        assert!(
            !env["AFTERCARE_PUBLIC_BASE_URL"].is_null(),
            "{binary}: AFTERCARE_PUBLIC_BASE_URL"
        );
        let key = serde_norway::to_string(&env["AFTERCARE_SIGNING_KEY"]).unwrap();
        assert!(
            key.contains("{{resolve:secretsmanager:${SigningKeySecret}:SecretString}}"),
            "{binary}: AFTERCARE_SIGNING_KEY must resolve the signing-key secret, got {key}"
        );
    }
    assert!(pages.contains("shipment-update"), "{pages:?}");
    assert!(shipment_update::ROUTES.contains(&shipment_update::ROUTE_TRACK_PAGE));
}
