//! order-placed: composition only; the shared Lambda shell ([`aftercare::runtime`]) does the rest.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    aftercare::runtime::serve::<order_placed::OrderPlaced>().await
}
