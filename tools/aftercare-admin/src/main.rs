//! `aftercare-admin`: the operator's command.
//!
//! ```text
//! aftercare-admin table create
//! aftercare-admin merchant put --file merchant.json
//! aftercare-admin merchant show acme
//! aftercare-admin merchant delete --merchant acme --dry-run            # counts per kind
//! aftercare-admin merchant delete --merchant acme --confirm acme --requested-by "ops: ticket 42"
//! aftercare-admin key issue --merchant acme --label "Shopify connector"   # prints the key once
//! aftercare-admin key list --merchant acme
//! aftercare-admin connector woocommerce --merchant acme --store-url https://shop.example/ --secret-file wc.secret
//! aftercare-admin key revoke --merchant acme key_01j...
//! aftercare-admin identity create acme.example
//! aftercare-admin products import examples/products.jsonl --merchant acme   # or a .csv file
//! aftercare-admin products get TENT-2P --merchant acme
//! aftercare-admin products delete TENT-2P --merchant acme
//! aftercare-admin gallery --out outbox/gallery --merchant examples/merchant.json   # no AWS
//! ```
//!
//! Uses the standard AWS configuration (profile, region, `AWS_ENDPOINT_URL` for a local endpoint)
//! and `AFTERCARE_TABLE` (or `--table`); `gallery` uses neither.

mod gallery;
mod offboard;
mod products;

use aftercare::adapters::store::Store;
use aftercare::domain::MerchantId;
use aftercare::domain::apikey::{self, ApiKeyRecord, KeyStatus};
use aftercare::domain::catalogue::Sku;
use aftercare::domain::ids::KeyId;
use aftercare::domain::merchant::MerchantInput;
use aftercare::domain::validation::parse_json;
use aftercare::ports::catalogue::Catalogue;
use clap::{Parser, Subcommand};
use serde_json::json;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "aftercare-admin",
    version,
    about = "Operate an Aftercare deployment"
)]
struct Cli {
    /// DynamoDB table name.
    #[arg(
        long,
        env = "AFTERCARE_TABLE",
        global = true,
        default_value = "aftercare"
    )]
    table: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The DynamoDB table (for local endpoints; deployments create it from infra/template.yaml).
    Table {
        #[command(subcommand)]
        action: TableAction,
    },
    /// Merchants (tenants).
    Merchant {
        #[command(subcommand)]
        action: MerchantAction,
    },
    /// Merchant API keys.
    Key {
        #[command(subcommand)]
        action: KeyAction,
    },
    /// The merchant's catalogue (products the follow-ups talk about).
    Products {
        #[command(subcommand)]
        action: ProductsAction,
    },
    /// Shop platforms that feed a merchant's orders.
    Connector {
        #[command(subcommand)]
        action: ConnectorAction,
    },
    /// SES sender identities.
    Identity {
        #[command(subcommand)]
        action: IdentityAction,
    },
    /// Renders every email kind in every locale with sample data as `<kind>.<locale>.html` and
    /// `.txt`, plus an `index.html` (no AWS needed). `scripts/gallery` screenshots and checks them.
    Gallery {
        /// Output directory (created; files of an earlier gallery run in it are replaced).
        #[arg(long, default_value = "outbox/gallery")]
        out: std::path::PathBuf,
        /// Merchant JSON file for branding and contact card (see examples/merchant.json); the
        /// built-in sample merchant when omitted.
        #[arg(long)]
        merchant: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand)]
enum TableAction {
    /// Creates the table with its indexes and TTL.
    Create,
}

#[derive(Subcommand)]
enum MerchantAction {
    /// Creates or replaces a merchant from a JSON file (see examples/merchant.json).
    Put {
        #[arg(long)]
        file: std::path::PathBuf,
    },
    /// Prints a merchant.
    Show { id: String },
    /// Offboards a merchant: deletes every item of it (profile and API keys first, then
    /// everything else, in steps), or with `--dry-run` counts them per kind. Every run leaves an
    /// audit record that outlives the merchant. Stopped or interrupted, run it again to continue.
    Delete {
        #[arg(long)]
        merchant: String,
        /// Count the merchant's items per kind; delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// The merchant id typed again: required to delete.
        #[arg(long, value_name = "MERCHANT")]
        confirm: Option<String>,
        /// Who asked (a name or ticket, no customer data): required to delete, kept in the audit
        /// record.
        #[arg(long, value_name = "NAME")]
        requested_by: Option<String>,
        /// Items deleted per step at most (the profile and API keys all go in the first step).
        #[arg(long, default_value_t = 1000)]
        batch: usize,
        /// Stop after this many steps (run again to continue); until nothing is left otherwise.
        #[arg(long)]
        max_steps: Option<u32>,
        /// Print the audit record as JSON on stdout (progress goes to stderr).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ConnectorAction {
    /// Connects a Shopify store to a merchant: its permanent domain and the secret Shopify signs
    /// its webhooks with (the app's client secret, or the one shown under Settings →
    /// Notifications → Webhooks), read from a file (`-` for stdin), never from the command line.
    /// Prints the webhook URL path to enter in Shopify.
    Shopify {
        #[arg(long)]
        merchant: String,
        /// The store's permanent domain, like `acme.myshopify.com`.
        #[arg(long)]
        shop_domain: String,
        #[arg(long, value_name = "FILE")]
        secret_file: std::path::PathBuf,
        /// Keep the secrets already set (a rotation: both verify until the old one is removed).
        #[arg(long)]
        add: bool,
        /// When the thank-you goes: `created` (orders/create) or `paid` (orders/paid).
        #[arg(long, default_value = "created")]
        thank_on: String,
    },
    /// Connects a WooCommerce store to a merchant: its URL (as WordPress knows it, the
    /// `X-WC-Webhook-Source` of its deliveries) and the secret entered for its webhooks under
    /// WooCommerce → Settings → Advanced → Webhooks, read from a file (`-` for stdin), never from
    /// the command line. Prints the delivery URL path to enter in WooCommerce.
    Woocommerce {
        #[arg(long)]
        merchant: String,
        /// The store's URL, like `https://shop.example/`.
        #[arg(long)]
        store_url: String,
        #[arg(long, value_name = "FILE")]
        secret_file: std::path::PathBuf,
        /// Keep the secrets already set (a rotation: both verify until the old one is removed).
        #[arg(long)]
        add: bool,
        /// The order statuses that place an order and thank the customer, comma-separated
        /// (default `processing,completed`).
        #[arg(long, value_delimiter = ',')]
        place_on: Vec<String>,
    },
    /// Connects EasyPost tracker webhooks. Prints the webhook URL path to register with EasyPost
    /// (with the same secret as its `webhook_secret`).
    Easypost(TrackingSecretArgs),
    /// Connects AfterShip tracking webhooks. Prints the webhook URL path to enter in AfterShip.
    Aftership(TrackingSecretArgs),
    /// Connects Shippo tracking webhooks: a new URL token (printed once, in the URL path to
    /// register with Shippo), and optionally the HMAC secret if Shippo signs the account's
    /// webhooks.
    Shippo {
        #[arg(long)]
        merchant: String,
        /// Shippo's HMAC secret, read from a file (`-` for stdin), if it signs this account's
        /// webhooks.
        #[arg(long, value_name = "FILE")]
        secret_file: Option<std::path::PathBuf>,
        /// Keep the current token (only add or replace the HMAC secret).
        #[arg(long)]
        keep_token: bool,
    },
}

/// A tracking aggregator that signs its webhooks with a secret.
#[derive(clap::Args)]
struct TrackingSecretArgs {
    #[arg(long)]
    merchant: String,
    /// The webhook secret the provider shows (EasyPost: the webhook's `webhook_secret`; AfterShip:
    /// Settings → Webhooks → webhook secret), read from a file (`-` for stdin).
    #[arg(long, value_name = "FILE")]
    secret_file: std::path::PathBuf,
    /// Keep the secrets already set (a rotation: both verify until the old one is removed).
    #[arg(long)]
    add: bool,
}

#[derive(Subcommand)]
enum KeyAction {
    /// Issues a new key and prints it once. Only its SHA-256 digest is stored.
    Issue {
        #[arg(long)]
        merchant: String,
        #[arg(long)]
        label: Option<String>,
    },
    /// Lists a merchant's keys (ids and status, never secrets).
    List {
        #[arg(long)]
        merchant: String,
    },
    /// Revokes a key.
    Revoke {
        #[arg(long)]
        merchant: String,
        key_id: String,
    },
}

#[derive(Subcommand)]
enum ProductsAction {
    /// Imports a catalogue file: JSON lines, or CSV when the name ends in `.csv` (header row
    /// `sku,name,url,image_url,price,currency,tips,related`; `tips` in the merchant's default
    /// locale and `related` are `|`-separated). Prints a summary; fails if any line was refused.
    Import {
        file: std::path::PathBuf,
        #[arg(long)]
        merchant: String,
    },
    /// Prints one product.
    Get {
        sku: String,
        #[arg(long)]
        merchant: String,
    },
    /// Deletes one product.
    Delete {
        sku: String,
        #[arg(long)]
        merchant: String,
    },
}

#[derive(Subcommand)]
enum IdentityAction {
    /// Creates an SES email or domain identity (starts verification on AWS).
    Create { identity: String },
}

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> ExitCode {
    aftercare::telemetry::init();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            let mut source = e.source();
            while let Some(s) = source {
                eprintln!("  caused by: {s}");
                source = s.source();
            }
            ExitCode::FAILURE
        }
    }
}

fn merchant_id(id: &str) -> Result<MerchantId, Error> {
    Ok(MerchantId::parse("merchant", id)?)
}

async fn run(cli: Cli) -> Result<(), Error> {
    if let Command::Gallery { out, merchant } = &cli.command {
        return gallery::run(out, merchant.as_deref());
    }
    let sdk = aftercare::adapters::aws::load_config().await;
    let store = Store::new(
        aftercare::adapters::aws::dynamodb_client(&sdk),
        cli.table.clone(),
    );
    let now = jiff::Timestamp::now();
    match cli.command {
        Command::Table {
            action: TableAction::Create,
        } => {
            aftercare::adapters::store::schema::create_table(store.client(), &cli.table).await?;
            println!("{}", json!({"table": cli.table, "status": "created"}));
        }
        Command::Merchant {
            action: MerchantAction::Put { file },
        } => {
            let bytes = std::fs::read(&file)?;
            let input: MerchantInput = parse_json(&bytes)?;
            let merchant = input.validate()?;
            store.put_merchant(&merchant, now).await?;
            println!("{}", json!({"merchant": merchant.id, "status": "stored"}));
        }
        Command::Connector {
            action:
                ConnectorAction::Shopify {
                    merchant,
                    shop_domain,
                    secret_file,
                    add,
                    thank_on,
                },
        } => {
            use aftercare::domain::merchant::{ShopifyConnector, ThankOn, WebhookSecret};
            let id = merchant_id(&merchant)?;
            let mut stored = store.get_merchant(&id).await?.ok_or("no such merchant")?;
            let mut secrets = vec![WebhookSecret(read_secret(&secret_file)?)];
            if add && let Some(old) = &stored.connectors.shopify {
                secrets.extend(old.secrets.iter().cloned());
            }
            let thank_on = match thank_on.as_str() {
                "created" => ThankOn::Created,
                "paid" => ThankOn::Paid,
                other => return Err(format!("--thank-on is created or paid, not {other}").into()),
            };
            let connector = ShopifyConnector {
                shop_domain,
                secrets,
                thank_on,
            }
            .validate()?;
            let domain = connector.shop_domain.clone();
            let count = connector.secrets.len();
            stored.connectors.shopify = Some(connector);
            store.put_merchant(&stored, now).await?;
            println!(
                "{}",
                json!({"merchant": id, "shopify": {"shop_domain": domain, "secrets": count},
                    "webhook_path": format!("/v1/connectors/shopify/{id}")})
            );
        }
        Command::Connector {
            action:
                ConnectorAction::Woocommerce {
                    merchant,
                    store_url,
                    secret_file,
                    add,
                    place_on,
                },
        } => {
            use aftercare::domain::merchant::{WebhookSecret, WooConnector};
            let id = merchant_id(&merchant)?;
            let mut stored = store.get_merchant(&id).await?.ok_or("no such merchant")?;
            let mut secrets = vec![WebhookSecret(read_secret(&secret_file)?)];
            if add && let Some(old) = &stored.connectors.woocommerce {
                secrets.extend(old.secrets.iter().cloned());
            }
            let connector = WooConnector {
                store_url,
                secrets,
                place_on,
            }
            .validate()?;
            let out = json!({"merchant": id, "woocommerce": {
                    "store_url": connector.store_url, "secrets": connector.secrets.len(),
                    "place_on": connector.place_on},
                "webhook_path": format!("/v1/connectors/woocommerce/{id}")});
            stored.connectors.woocommerce = Some(connector);
            store.put_merchant(&stored, now).await?;
            println!("{out}");
        }
        Command::Connector {
            action: ConnectorAction::Easypost(args),
        } => connect_tracking(&store, "easypost", args, now).await?,
        Command::Connector {
            action: ConnectorAction::Aftership(args),
        } => connect_tracking(&store, "aftership", args, now).await?,
        Command::Connector {
            action:
                ConnectorAction::Shippo {
                    merchant,
                    secret_file,
                    keep_token,
                },
        } => {
            use aftercare::domain::merchant::{ShippoConnector, WebhookSecret};
            let id = merchant_id(&merchant)?;
            let mut stored = store.get_merchant(&id).await?.ok_or("no such merchant")?;
            let old = stored.connectors.shippo.clone();
            let token = match (&old, keep_token) {
                (Some(old), true) => old.token.clone(),
                _ => ShippoConnector::new_token()?,
            };
            let secrets = match &secret_file {
                Some(file) => vec![WebhookSecret(read_secret(file)?)],
                None => old.map(|o| o.secrets).unwrap_or_default(),
            };
            let connector = ShippoConnector { token, secrets }.validate()?;
            let out = json!({"merchant": id, "shippo": {"hmac_secrets": connector.secrets.len()},
                "webhook_path": format!("/v1/connectors/shippo/{id}?token={}", connector.token.0)});
            stored.connectors.shippo = Some(connector);
            store.put_merchant(&stored, now).await?;
            println!("{out}");
        }
        Command::Merchant {
            action: MerchantAction::Show { id },
        } => {
            let merchant = store
                .get_merchant(&merchant_id(&id)?)
                .await?
                .ok_or("no such merchant")?;
            println!("{}", serde_json::to_string_pretty(&merchant)?);
        }
        Command::Merchant {
            action:
                MerchantAction::Delete {
                    merchant,
                    dry_run,
                    confirm,
                    requested_by,
                    batch,
                    max_steps,
                    json,
                },
        } => {
            let args = offboard::Args {
                merchant,
                dry_run,
                confirm,
                requested_by,
                batch,
                max_steps,
                json,
            };
            offboard::run(&store, &args).await?;
        }
        Command::Key {
            action: KeyAction::Issue { merchant, label },
        } => {
            let merchant = merchant_id(&merchant)?;
            if store.get_merchant(&merchant).await?.is_none() {
                return Err("no such merchant; create it first with `merchant put`".into());
            }
            let issued = apikey::issue()?;
            let record = ApiKeyRecord {
                key_id: issued.key_id.clone(),
                merchant_id: merchant.clone(),
                status: KeyStatus::Active,
                created_at: now,
                revoked_at: None,
                label,
            };
            store.put_api_key(&record, &issued.hash).await?;
            println!(
                "{}",
                json!({"merchant": merchant, "key_id": issued.key_id, "api_key": issued.secret})
            );
            eprintln!("Store the api_key now: it is shown only once.");
        }
        Command::Key {
            action: KeyAction::List { merchant },
        } => {
            let keys = store.list_api_keys(&merchant_id(&merchant)?).await?;
            println!("{}", serde_json::to_string_pretty(&keys)?);
        }
        Command::Key {
            action: KeyAction::Revoke { merchant, key_id },
        } => {
            let key_id = KeyId::parse("key_id", &key_id)?;
            if !store
                .revoke_api_key(&merchant_id(&merchant)?, &key_id, now)
                .await?
            {
                return Err("no such key for this merchant".into());
            }
            println!("{}", json!({"key_id": key_id, "status": "revoked"}));
        }
        Command::Products {
            action: ProductsAction::Import { file, merchant },
        } => products::import(&store, &merchant_id(&merchant)?, &file).await?,
        Command::Products {
            action: ProductsAction::Get { sku, merchant },
        } => {
            let sku = Sku::parse("sku", &sku)?;
            let product = store
                .product(&merchant_id(&merchant)?, &sku)
                .await?
                .ok_or("no such product")?;
            println!("{}", serde_json::to_string_pretty(&product)?);
        }
        Command::Products {
            action: ProductsAction::Delete { sku, merchant },
        } => {
            let sku = Sku::parse("sku", &sku)?;
            if !store.delete_product(&merchant_id(&merchant)?, &sku).await? {
                return Err("no such product".into());
            }
            println!("{}", json!({"sku": sku, "status": "deleted"}));
        }
        Command::Identity {
            action: IdentityAction::Create { identity },
        } => {
            let ses = aws_sdk_sesv2::Client::new(&sdk);
            ses.create_email_identity()
                .email_identity(&identity)
                .send()
                .await?;
            println!("{}", json!({"identity": identity, "status": "created"}));
        }
        // Rendered above, before the AWS configuration is loaded.
        Command::Gallery { .. } => {}
    }
    Ok(())
}

/// A secret read from a file (`-`: stdin), trimmed.
/// Connects EasyPost or AfterShip (`name`) to a merchant with the secret read from the file.
async fn connect_tracking(
    store: &aftercare::adapters::store::Store,
    name: &str,
    args: TrackingSecretArgs,
    now: jiff::Timestamp,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    use aftercare::domain::merchant::{TrackingConnector, WebhookSecret};
    let id = merchant_id(&args.merchant)?;
    let mut stored = store.get_merchant(&id).await?.ok_or("no such merchant")?;
    let slot = match name {
        "easypost" => &mut stored.connectors.easypost,
        _ => &mut stored.connectors.aftership,
    };
    let mut secrets = vec![WebhookSecret(read_secret(&args.secret_file)?)];
    if args.add
        && let Some(old) = slot.as_ref()
    {
        secrets.extend(old.secrets.iter().cloned());
    }
    let connector = TrackingConnector { secrets }.validate(name)?;
    let count = connector.secrets.len();
    *slot = Some(connector);
    store.put_merchant(&stored, now).await?;
    println!(
        "{}",
        json!({"merchant": id, name: {"secrets": count},
            "webhook_path": format!("/v1/connectors/{name}/{id}")})
    );
    Ok(())
}

fn read_secret(path: &std::path::Path) -> Result<String, std::io::Error> {
    let text = if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)?;
        text
    } else {
        std::fs::read_to_string(path)?
    };
    Ok(text.trim().to_owned())
}
