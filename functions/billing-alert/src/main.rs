//! billing-alert: composition only. Telemetry → config → clients → run.

use aftercare::Config;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    aftercare::telemetry::init();
    let config = Config::from_env()?;
    let sdk = aftercare::adapters::aws::load_config().await;
    let app = billing_alert::App::new(config, &sdk)?;
    app.warm_up().await;
    // Update-payment links need both; fail at init rather than on the first email.
    let links = billing_alert::Links::from_config(&app.config)?;
    let (app, links) = (&app, &links);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = aftercare::usecases::send::Deadline::from_epoch_ms(event.context.deadline);
        Box::pin(billing_alert::handle(
            app,
            links,
            event.payload,
            &event.context.request_id,
            deadline,
        ))
        .await
    }))
    .await
}
