//! billing-alert: composition only; the shared Lambda shell ([`aftercare::runtime`]) does the rest.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    aftercare::runtime::serve::<billing_alert::BillingAlert<'static>>().await
}
