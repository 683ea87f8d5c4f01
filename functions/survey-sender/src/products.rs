//! The merchant's catalogue (Bearer key): the products the follow-ups talk about.
//!
//! * `PUT /v1/products/{sku}` with a product (`name`, `url`, `image_url`, `price` in minor units,
//!   `currency`, `tips` per locale, `related` SKUs) → 200 with the product as stored.
//! * `GET /v1/products/{sku}` → 200 with the product, or 404.
//! * `DELETE /v1/products/{sku}` → 200 `{"sku", "deleted": true}`, or 404.
//! * `POST /v1/products` with `{"products": [...]}` (at most 5,000, each with its `sku`) → 200
//!   `{"results": [{"sku", "status": "stored" | "invalid" | "not_stored", "error"?}], "stored",
//!   "invalid", "not_stored"}`: each product is validated on its own, refusals name the field
//!   (`products[3].tips.de[0]`), `not_stored` ones may be sent again.
//!
//! The SKU in the path is URL-encoded (`TENT%2F2P` for `TENT/2P`). A key reaches only its own
//! merchant's products.

use aftercare::app::App;
use aftercare::domain::catalogue::{Product, ProductInput};
use aftercare::domain::validation::parse_json;
use aftercare::http::{self, ApiError};
use aftercare::usecases::catalogue::{CatalogueError, Outcome, Products};
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeSet;

pub const ROUTE_PUT_PRODUCT: &str = "PUT /v1/products/{sku}";
pub const ROUTE_GET_PRODUCT: &str = "GET /v1/products/{sku}";
pub const ROUTE_DELETE_PRODUCT: &str = "DELETE /v1/products/{sku}";
pub const ROUTE_PUT_PRODUCTS: &str = "POST /v1/products";

/// Largest bulk body, decoded: 5,000 products of about 800 bytes each, within Lambda's 6 MB
/// request payload.
pub const MAX_BULK_BODY_BYTES: usize = 4 * 1024 * 1024;

fn api_error(e: CatalogueError) -> ApiError {
    match e {
        CatalogueError::Invalid(e) => e.into(),
        CatalogueError::Store(e) => e.into(),
    }
}

/// A product as the API shows it.
pub fn view(p: &Product) -> Value {
    json!({
        "sku": p.sku, "name": p.name, "url": p.url, "image_url": p.image_url, "price": p.price,
        "currency": p.currency, "tips": p.tips, "related": p.related, "updated_at": p.updated_at,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkInput {
    products: Vec<Value>,
}

pub async fn products(app: &App, req: &ApiGatewayV2httpRequest) -> Result<(u16, Value), ApiError> {
    let merchant = app.tenancy.authenticate(req).await?;
    tracing::Span::current().record("merchant_id", merchant.id.as_str());
    let catalogue = Products {
        catalogue: &app.store,
        merchant: &merchant.id,
    };
    let now = app.clock.now();
    let route = http::route_key(req);
    if route == ROUTE_PUT_PRODUCTS {
        http::require_json(req)?;
        let input: BulkInput = parse_json(&http::body_bytes_upto(req, MAX_BULK_BODY_BYTES)?)?;
        let items = input
            .products
            .into_iter()
            .enumerate()
            .map(|(i, v)| (format!("products[{i}]"), v))
            .collect();
        let results = catalogue
            .upsert_many(items, &mut BTreeSet::new(), now)
            .await
            .map_err(api_error)?;
        let count = |status: &str| {
            results
                .iter()
                .filter(|r| label(&r.outcome) == status)
                .count()
        };
        let (stored, invalid, not_stored) =
            (count("stored"), count("invalid"), count("not_stored"));
        let results: Vec<Value> = results
            .iter()
            .map(|r| {
                let mut v = json!({"sku": r.sku, "status": label(&r.outcome)});
                if let Outcome::Invalid(e) = &r.outcome {
                    v["error"] = json!({"code": e.code, "message": e.message, "field": e.field});
                }
                v
            })
            .collect();
        return Ok((
            200,
            json!({"results": results, "stored": stored, "invalid": invalid, "not_stored": not_stored}),
        ));
    }
    let sku = req
        .path_parameters
        .get("sku")
        .map(|s| http::percent_decode(s))
        .unwrap_or_default();
    match route.as_str() {
        ROUTE_PUT_PRODUCT => {
            http::require_json(req)?;
            let input: ProductInput = parse_json(&http::body_bytes(req)?)?;
            let product = catalogue.put(&sku, input, now).await.map_err(api_error)?;
            Ok((200, view(&product)))
        }
        ROUTE_DELETE_PRODUCT => match catalogue.delete(&sku).await.map_err(api_error)? {
            true => Ok((200, json!({"sku": sku.trim(), "deleted": true}))),
            false => Err(ApiError::not_found("the product")),
        },
        _ => match catalogue.get(&sku).await.map_err(api_error)? {
            Some(p) => Ok((200, view(&p))),
            None => Err(ApiError::not_found("the product")),
        },
    }
}

fn label(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Stored => "stored",
        Outcome::Invalid(_) => "invalid",
        Outcome::NotStored => "not_stored",
    }
}
