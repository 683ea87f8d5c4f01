//! Reading `infra/template.yaml`: the table definition tests create, and what the contract test
//! compares with the workspace.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use serde_norway::Value;

pub fn template() -> Value {
    let path = super::root().join("infra/template.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_norway::from_str(&text).unwrap()
}

/// `Resources` entries of `type_name`, as (logical id, resource).
pub fn resources_of_type(t: &Value, type_name: &str) -> Vec<(String, Value)> {
    t["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(type_name))
        .map(|(k, r)| (k.as_str().unwrap().to_owned(), r.clone()))
        .collect()
}

fn table_properties(t: &Value) -> Value {
    let tables = resources_of_type(t, "AWS::DynamoDB::Table");
    assert_eq!(tables.len(), 1, "one table");
    tables[0].1["Properties"].clone()
}

fn key_schema(v: &Value) -> Vec<KeySchemaElement> {
    v.as_sequence()
        .unwrap()
        .iter()
        .map(|k| {
            KeySchemaElement::builder()
                .attribute_name(k["AttributeName"].as_str().unwrap())
                .key_type(KeyType::from(k["KeyType"].as_str().unwrap()))
                .build()
                .unwrap()
        })
        .collect()
}

/// Creates `name` with exactly the key schema, attributes and indexes of the template's table.
pub async fn create_table_from_template(client: &aws_sdk_dynamodb::Client, name: &str) {
    let props = table_properties(&template());
    let mut req = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(key_schema(&props["KeySchema"])));
    for a in props["AttributeDefinitions"].as_sequence().unwrap() {
        req = req.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(a["AttributeName"].as_str().unwrap())
                .attribute_type(ScalarAttributeType::from(
                    a["AttributeType"].as_str().unwrap(),
                ))
                .build()
                .unwrap(),
        );
    }
    for g in props["GlobalSecondaryIndexes"]
        .as_sequence()
        .cloned()
        .unwrap_or_default()
    {
        req = req.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(g["IndexName"].as_str().unwrap())
                .set_key_schema(Some(key_schema(&g["KeySchema"])))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::from(
                            g["Projection"]["ProjectionType"].as_str().unwrap(),
                        ))
                        .build(),
                )
                .build()
                .unwrap(),
        );
    }
    req.send().await.unwrap();
}

/// (primary key attributes, [(index, hash, range)], ttl attribute) as the template declares them.
pub fn table_shape() -> (Vec<String>, Vec<(String, String, String)>, String) {
    let props = table_properties(&template());
    let keys = props["KeySchema"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|k| k["AttributeName"].as_str().unwrap().to_owned())
        .collect();
    let indexes = props["GlobalSecondaryIndexes"]
        .as_sequence()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|g| {
            let ks = g["KeySchema"].as_sequence().unwrap();
            (
                g["IndexName"].as_str().unwrap().to_owned(),
                ks[0]["AttributeName"].as_str().unwrap().to_owned(),
                ks[1]["AttributeName"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let ttl = props["TimeToLiveSpecification"]["AttributeName"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (keys, indexes, ttl)
}

/// Every route of the deployed HTTP API, as `"METHOD /path"` (the template's `HttpApi` events).
pub fn api_routes() -> std::collections::BTreeSet<String> {
    let t = template();
    resources_of_type(&t, "AWS::Serverless::Function")
        .into_iter()
        .flat_map(|(_, f)| {
            f["Properties"]["Events"]
                .as_mapping()
                .cloned()
                .unwrap_or_default()
        })
        .filter(|(_, ev)| ev["Type"].as_str() == Some("HttpApi"))
        .map(|(_, ev)| {
            let p = &ev["Properties"];
            format!(
                "{} {}",
                p["Method"].as_str().unwrap().to_uppercase(),
                p["Path"].as_str().unwrap()
            )
        })
        .collect()
}
