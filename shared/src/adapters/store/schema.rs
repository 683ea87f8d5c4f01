//! The table's shape as data: used by the operator tool and tests to create the table, and checked
//! against `infra/template.yaml` by the contract test so the two cannot drift.

use super::keys;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};

/// (attribute, key type) pairs.
pub struct IndexDefinition {
    pub name: &'static str,
    pub hash: &'static str,
    pub range: &'static str,
}

pub const PRIMARY: (&str, &str) = (keys::PK, keys::SK);
pub const INDEXES: &[IndexDefinition] = &[
    // API keys by digest.
    IndexDefinition {
        name: keys::GSI1,
        hash: keys::GSI1PK,
        range: keys::GSI1SK,
    },
    // Due work, sparse and write-sharded (see keys.rs).
    IndexDefinition {
        name: keys::DUE,
        hash: keys::DUEPK,
        range: keys::DUESK,
    },
];

/// Every attribute named in a key (all strings).
pub fn key_attributes() -> Vec<&'static str> {
    let mut attrs = vec![PRIMARY.0, PRIMARY.1];
    for i in INDEXES {
        attrs.push(i.hash);
        attrs.push(i.range);
    }
    attrs
}

fn key_schema(
    hash: &str,
    range: &str,
) -> Result<Vec<KeySchemaElement>, aws_sdk_dynamodb::error::BuildError> {
    Ok(vec![
        KeySchemaElement::builder()
            .attribute_name(hash)
            .key_type(KeyType::Hash)
            .build()?,
        KeySchemaElement::builder()
            .attribute_name(range)
            .key_type(KeyType::Range)
            .build()?,
    ])
}

/// Creates the table (on-demand billing) and enables TTL.
pub async fn create_table(
    client: &Client,
    name: &str,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut req = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(key_schema(PRIMARY.0, PRIMARY.1)?));
    for attr in key_attributes() {
        req = req.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(attr)
                .attribute_type(ScalarAttributeType::S)
                .build()?,
        );
    }
    for i in INDEXES {
        req = req.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(i.name)
                .set_key_schema(Some(key_schema(i.hash, i.range)?))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()?,
        );
    }
    req.send().await?;
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(keys::TTL)
                .enabled(true)
                .build()?,
        )
        .send()
        .await?;
    Ok(())
}
