//! The benchmark's baseline: the smallest useful lambda_runtime function, built with the same
//! release profile as the real functions, so every figure can be given as a ratio to it.

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<Value, lambda_runtime::Error>(
            json!({"hello": event.payload.get("name").cloned().unwrap_or_default()}),
        )
    }))
    .await
}
