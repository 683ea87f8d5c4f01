//! Returns: the merchant's API, the return emails' content, the store credit a resolution gives,
//! the outbound event of every status change and the return parcel's carrier scans.
//!
//! * `POST /v1/orders/{orderId}/returns` (`Idempotency-Key`): a return the merchant creates for
//!   the customer (past the window or the exclusions if they choose; never past what was ordered).
//!   201 with the return, 200 with the same return on a replay, 409 `idempotency_conflict` for the
//!   same key with another request, 422 naming the field a value is refused for.
//! * `GET /v1/returns?status=&from=&to=`: the returns created in a period (30 days back by
//!   default, at most 366), newest first, filtered by status.
//! * `GET /v1/returns/{returnId}`: one return with its history.
//! * `POST /v1/returns/{returnId}/{action}`: `approve`, `reject` (`{"reason": "…"}`), `receive`,
//!   `resolve`, `parcel` (`{"tracking_number": "…", "carrier": "…"}`): 200 with the return; 409
//!   `invalid_transition` naming `status` when the return cannot move so; a replay of a move that
//!   happened answers the return as it is (and finishes its email if it had not gone out).
//!
//! * `GET /v1/returns/analytics?from=&to=`: the returns created in a period, per currency: how
//!   many, units and value by SKU and by reason, each SKU's return rate (units back over units
//!   sold on the period's days), how they were resolved (the share kept as an exchange or store
//!   credit), refunds, store credit given and the revenue retained.
//!
//! Every status change is published (`Return Status Changed`, on the bus and to the merchant's
//! signed webhook) with an `event_id` derived from the return, its status and version, so a
//! receiver dedupes a replay's second copy.

use super::*;
use aftercare::adapters::mail::SesMailer;
use aftercare::adapters::store::Store;
use aftercare::domain::Locale;
use aftercare::domain::ids::ReturnId;
use aftercare::domain::returns::{
    Actor, CreditFigures, Requester, ReturnInput, ReturnParcel, ReturnRecord, ReturnStatus,
};
use aftercare::domain::text::single_line;
use aftercare::ports::returns::ReturnBook as _;
use aftercare::usecases::returns::{
    ComposeReturnEmail, IssueCredit, Move, Outcome, ReturnError, Returns,
};
use sha2::{Digest, Sha256};

pub const ROUTE_CREATE_RETURN: &str = "POST /v1/orders/{orderId}/returns";
pub const ROUTE_LIST_RETURNS: &str = "GET /v1/returns";
pub const ROUTE_GET_RETURN: &str = "GET /v1/returns/{returnId}";
pub const ROUTE_RETURN_ACTION: &str = "POST /v1/returns/{returnId}/{action}";
pub const ROUTE_RETURNS_ANALYTICS: &str = "GET /v1/returns/analytics";
/// The detail-type of the event published on every status change.
pub const EVENT_RETURN_STATUS: &str = "Return Status Changed";
/// Default and longest period a listing covers.
const DEFAULT_DAYS: i64 = 30;
const MAX_DAYS: i64 = 366;

/// The returns use-case, its emails rendered by [`return_email`].
pub fn returns(
    app: &App,
) -> Returns<'_, Store, Store, SesMailer, impl ComposeReturnEmail<OutgoingEmail> + '_> {
    Returns {
        book: &app.store,
        courier: app.courier(),
        retention: app.retention(),
        compose: move |merchant: &Merchant, record: &ReturnRecord, kind: EmailKind| {
            return_email(app, merchant, record, kind)
        },
    }
}

/// Store credit from the credit ledger beside the loyalty ledger
/// ([`aftercare::usecases::credit`]): given once per return (its source `return-<id>`).
pub(crate) struct Credit<'a>(pub &'a App);

impl IssueCredit for Credit<'_> {
    async fn issue_credit(
        &self,
        merchant: &MerchantId,
        customer: &aftercare::domain::CustomerId,
        currency: aftercare::domain::Currency,
        amount: i64,
        bonus: i64,
        source: &str,
        now: jiff::Timestamp,
    ) -> Result<CreditFigures, ReturnError> {
        use aftercare::usecases::credit::{CreditError, StoreCredit};
        let credit = StoreCredit {
            book: &self.0.store,
        };
        let issued = credit
            .issue(
                merchant,
                customer,
                aftercare::domain::Money::new(amount, currency),
                bonus,
                source,
                None,
                now,
            )
            .await;
        match issued {
            Ok(i) => Ok(CreditFigures {
                amount: i.amount.amount,
                bonus: i.bonus,
                balance: i.balance_after,
            }),
            Err(CreditError::Store(e)) => Err(ReturnError::Store(e)),
            Err(CreditError::Invalid(f)) => Err(ReturnError::Invalid(f)),
            Err(e) => {
                tracing::error!(error = %e, "store credit for a return refused");
                Err(ReturnError::Busy)
            }
        }
    }
}

/// A return email of `kind` to the return's customer, in their language.
pub(crate) fn return_email(
    app: &App,
    merchant: &Merchant,
    record: &ReturnRecord,
    kind: EmailKind,
) -> Option<OutgoingEmail> {
    let customer = &record.customer;
    let to = Mailbox::new(customer.display_name().as_deref(), customer.email.clone()?);
    let locale = customer.locale_or(merchant.default_locale);
    let mut data = email_data(merchant, record, locale);
    if let Some(links) = app.links.as_ref() {
        let expires =
            aftercare::links::return_link_expiry(&merchant.settings.returns, record.created_at);
        data["return"]["portal_url"] = links
            .return_page(merchant.id.as_str(), record.order_id.as_str(), expires)
            .into();
    }
    let rendered = app
        .renderer
        .render(kind, locale, merchant, &data)
        .inspect_err(
            |e| tracing::error!(error = ?e, kind = kind.as_str(), "return email failed to render"),
        )
        .ok()?;
    let id = aftercare::usecases::returns::email_id(record, kind);
    Some(OutgoingEmail::compose(
        merchant,
        to,
        kind,
        rendered,
        &id.reference(),
        None,
    ))
}

/// What a return email shows (see the `returns` templates).
fn email_data(merchant: &Merchant, record: &ReturnRecord, locale: Locale) -> Value {
    let policy = &merchant.settings.returns;
    let money = |amount: i64| aftercare::domain::Money::new(amount, record.currency).format(locale);
    let nonzero = |amount: i64| (amount != 0).then(|| money(amount));
    let tz = record.customer.time_zone_or(&merchant.time_zone);
    let reason = |code: &str| {
        policy
            .reason(code)
            .map_or_else(|| code.to_owned(), |r| r.label(locale).to_owned())
    };
    let items: Vec<Value> = record
        .lines
        .iter()
        .map(|l| json!({"name": l.name, "sku": l.sku, "quantity": l.quantity, "reason": reason(&l.reason), "amount": money(l.amount)}))
        .collect();
    let exchange: Vec<Value> = record
        .lines
        .iter()
        .filter_map(|l| Some(json!({"name": l.name, "sku": l.exchange_sku.clone()?})))
        .collect();
    let a = &record.amounts;
    let shipping = &policy.shipping;
    let has_shipping = shipping.label_url.is_some()
        || shipping.instructions.is_some()
        || shipping.address.is_some();
    let mut ret = json!({
        "number": record.number(),
        "items": items,
        "resolution": record.resolution.as_str(),
        "refund_total": (record.resolution == aftercare::domain::returns::Resolution::Refund).then(|| money(a.refund)),
        "restocking_fee": nonzero(a.restocking_fee),
        "rejection_reason": record.rejection_reason,
        "send_by": record.send_by.map(|t| long_date(t, tz, locale)),
        "tracking_number": record.parcel.as_ref().map(|p| p.tracking_number.clone()),
        "carrier": record.parcel.as_ref().and_then(|p| p.carrier.clone()),
    });
    if has_shipping {
        ret["shipping"] = json!({"label_url": shipping.label_url, "instructions": shipping.instructions, "address": shipping.address});
    }
    if !exchange.is_empty() {
        ret["exchange_items"] = exchange.into();
    }
    let mut data = json!({
        "customer": {"greeting_name": record.customer.first_name, "first_name": record.customer.first_name, "last_name": record.customer.last_name},
        "order": {"number": record.order_id},
        "return": ret,
    });
    if record.resolution == aftercare::domain::returns::Resolution::Refund {
        data["refund"] = json!({"amount": money(a.refund), "order_number": record.order_id, "method": "original_payment"});
    }
    if let Some(c) = record.credit {
        data["credit"] = json!({
            "amount": money(c.amount), "bonus": nonzero(c.bonus), "total": money(c.total()),
            "balance": money(c.balance), "how_to_use": policy.credit_instructions,
        });
    }
    data
}

/// A return as the API answers it.
pub(crate) fn return_view(record: &ReturnRecord, email: Option<&SendOutcome>) -> Value {
    let mut v = serde_json::to_value(record).unwrap_or_default();
    if let Some(map) = v.as_object_mut() {
        map.remove("content_hash");
        map.insert("number".into(), record.number().into());
        map.insert("customer_id".into(), record.customer.id.as_str().into());
        map.remove("customer");
        map.remove("merchant_id");
        if let Some(e) = email {
            map.insert("email".into(), e.as_str().into());
        }
    }
    v
}

/// Publishes the return's status (at least once; the `event_id` is the same for a replay).
pub(crate) async fn publish(app: &App, merchant: &Merchant, record: &ReturnRecord) {
    let digest = Sha256::digest(
        format!(
            "{}|{}|{}",
            record.id,
            record.status.as_str(),
            record.version
        )
        .as_bytes(),
    );
    let detail = json!({
        "event_id": hex::encode(&digest[..16]),
        "merchant_id": merchant.id, "return_id": record.id, "order_id": record.order_id,
        "customer_id": record.customer.id, "status": record.status.as_str(),
        "resolution": record.resolution.as_str(), "at": record.updated_at,
    });
    app.events
        .publish(merchant, EVENT_RETURN_STATUS, &detail, app.clock.now())
        .await;
}

/// The merchant API's return routes.
pub(crate) async fn api(
    app: &App,
    merchant: &Merchant,
    req: &ApiGatewayV2httpRequest,
    route: &str,
    deadline: Deadline,
) -> Result<(u16, Value), ApiError> {
    match route {
        ROUTE_CREATE_RETURN => {
            let order_id = OrderId::parse("orderId", path_param(req, "orderId")?)?;
            let key = http::idempotency_key(req)?;
            http::require_json(req)?;
            let input: ReturnInput = parse_json(&http::body_bytes(req)?)?;
            let out = returns(app)
                .request(
                    merchant,
                    &order_id,
                    &key,
                    &input,
                    Requester::Merchant,
                    deadline,
                )
                .await?;
            if out.changed {
                publish(app, merchant, &out.record).await;
            }
            follow_through(app, merchant, &out.record).await?;
            let status = if out.changed { 201 } else { 200 };
            Ok((status, return_view(&out.record, out.email.as_ref())))
        }
        ROUTE_LIST_RETURNS => list(app, merchant, req).await,
        ROUTE_RETURNS_ANALYTICS => analytics(app, merchant, req).await,
        ROUTE_GET_RETURN => {
            let id = ReturnId::parse("returnId", path_param(req, "returnId")?)?;
            let record = app
                .store
                .return_record(&merchant.id, &id)
                .await?
                .ok_or_else(|| ApiError::not_found("the return"))?;
            Ok((200, return_view(&record, None)))
        }
        _ => action(app, merchant, req, deadline).await,
    }
}

async fn action(
    app: &App,
    merchant: &Merchant,
    req: &ApiGatewayV2httpRequest,
    deadline: Deadline,
) -> Result<(u16, Value), ApiError> {
    let id = ReturnId::parse("returnId", path_param(req, "returnId")?)?;
    let action = path_param(req, "action")?;
    #[derive(Deserialize, Default)]
    struct Body {
        #[serde(default)]
        reason: Option<String>,
        #[serde(default)]
        tracking_number: Option<String>,
        #[serde(default)]
        carrier: Option<String>,
    }
    let body: Body = match req.body.as_deref() {
        Some(b) if !b.trim().is_empty() => {
            http::require_json(req)?;
            parse_json(&http::body_bytes(req)?)?
        }
        _ => Body::default(),
    };
    let to = match action {
        "approve" => ReturnStatus::Approved,
        "reject" => ReturnStatus::Rejected,
        "receive" => ReturnStatus::Received,
        "resolve" => ReturnStatus::Resolved,
        "parcel" => {
            let number = body
                .tracking_number
                .as_deref()
                .ok_or_else(|| FieldError::required("tracking_number"))?;
            let number = single_line("tracking_number", number, 64)?;
            if aftercare::domain::shipment::normalise_tracking_number(&number).is_empty() {
                return Err(ApiError::new(
                    422,
                    "invalid_format",
                    "a tracking number needs letters or digits",
                )
                .field("tracking_number"));
            }
            let carrier =
                aftercare::domain::text::optional_line("carrier", body.carrier.as_deref(), 60)?;
            let out = returns(app)
                .set_parcel(
                    merchant,
                    &id,
                    ReturnParcel {
                        tracking_number: number,
                        carrier,
                    },
                )
                .await?;
            return Ok((200, return_view(&out.record, None)));
        }
        _ => {
            return Err(ApiError::new(
                404,
                "not_found",
                "the action must be approve, reject, receive, resolve or parcel",
            )
            .field("action"));
        }
    };
    let note = match to {
        ReturnStatus::Rejected => {
            let reason = body
                .reason
                .as_deref()
                .map(|r| aftercare::domain::returns::multi_line("reason", Some(r), 500))
                .transpose()?
                .flatten()
                .ok_or_else(|| {
                    ApiError::new(
                        422,
                        "required",
                        "say why the return is rejected: the customer is told",
                    )
                    .field("reason")
                })?;
            Some(reason)
        }
        _ => None,
    };
    let out = move_return(app, merchant, &id, to, Actor::Merchant, note, deadline).await?;
    Ok((200, return_view(&out.record, out.email.as_ref())))
}

/// What a return's status brings about beyond its email, each once (and again, harmlessly, on a
/// replay, so a change whose invocation stopped half-way is finished by the next): from approval
/// on, its lines leave the order's pending review request and cross-sell and are never named as
/// "you bought"; resolved as a refund or as store credit, the points they earned are taken back
/// (the loyalty ledger's clamp rules: never more than earned, never below zero).
pub async fn follow_through(
    app: &App,
    merchant: &Merchant,
    record: &ReturnRecord,
) -> Result<(), ReturnError> {
    use aftercare::domain::catalogue::Sku;
    use aftercare::domain::returns::Resolution;
    let now = app.clock.now();
    if matches!(
        record.status,
        ReturnStatus::Approved | ReturnStatus::Received | ReturnStatus::Resolved
    ) {
        let skus: Vec<Sku> = record
            .lines
            .iter()
            .filter_map(|l| Sku::parse("sku", &l.sku).ok())
            .collect();
        aftercare::usecases::followups::drop_returned_lines(
            &app.store,
            &merchant.id,
            &record.order_id,
            &skus,
            "returned",
            now,
        )
        .await?;
    }
    if record.status == ReturnStatus::Resolved
        && matches!(
            record.resolution,
            Resolution::Refund | Resolution::StoreCredit
        )
    {
        use aftercare::domain::billing::{EventKey, RefundFacts};
        use aftercare::usecases::billing::BillingEvents;
        // A refund reported before the return was resolved took its points back already, under
        // its own source: the same source again takes nothing twice.
        let id = match &record.refund_reported {
            Some(reported) => reported.id.clone(),
            None => aftercare::usecases::returns::refund_subject(&record.id),
        };
        let facts = RefundFacts {
            refunded_in_all: None,
            id: id.clone(),
            customer: record.customer.clone(),
            order_id: Some(record.order_id.clone()),
            amount: aftercare::domain::Money::new(record.amounts.value, record.currency),
        };
        let ev = EventKey {
            provider: "returns",
            event_id: &id,
            kind: "refund",
            content_hash: &record.content_hash,
        };
        let events = BillingEvents {
            book: &app.store,
            courier: app.courier(),
            retention: app.retention(),
        };
        events
            .reverse_returned_points(merchant, &ev, &facts, now)
            .await
            .map_err(|e| match e {
                aftercare::usecases::billing::BillingError::Store(e) => ReturnError::Store(e),
                _ => ReturnError::Busy,
            })?;
    }
    Ok(())
}

/// Moves a return and publishes its new status when this call moved it.
pub async fn move_return(
    app: &App,
    merchant: &Merchant,
    id: &ReturnId,
    to: ReturnStatus,
    by: Actor,
    note: Option<String>,
    deadline: Deadline,
) -> Result<Outcome, ReturnError> {
    let out = returns(app)
        .move_to(merchant, id, Move { to, by, note }, &Credit(app), deadline)
        .await?;
    if out.changed {
        publish(app, merchant, &out.record).await;
    }
    follow_through(app, merchant, &out.record).await?;
    Ok(out)
}

async fn list(
    app: &App,
    merchant: &Merchant,
    req: &ApiGatewayV2httpRequest,
) -> Result<(u16, Value), ApiError> {
    let (from, to) = period(app, req)?;
    let status = http::query_param(req, "status")
        .map(|s| ReturnStatus::parse("status", s))
        .transpose()?;
    let mut found = app.store.returns_between(&merchant.id, from, to).await?;
    if let Some(status) = status {
        found.retain(|r| r.status == status);
    }
    found.reverse();
    Ok((
        200,
        json!({
            "from": from, "to": to, "status": status.map(|s| s.as_str()),
            "returns": found.iter().map(|r| return_view(r, None)).collect::<Vec<_>>(),
        }),
    ))
}

/// The `from` and `to` of a listing or report (RFC 3339 times, or dates meaning midnight UTC).
pub(crate) fn period(
    app: &App,
    req: &ApiGatewayV2httpRequest,
) -> Result<(jiff::Timestamp, jiff::Timestamp), ApiError> {
    let at = |field: &str| -> Result<Option<jiff::Timestamp>, ApiError> {
        http::query_param(req, field)
            .map(|v| {
                v.parse::<jiff::Timestamp>()
                    .ok()
                    .or_else(|| {
                        v.parse::<jiff::civil::Date>()
                            .ok()
                            .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
                            .map(|z| z.timestamp())
                    })
                    .ok_or_else(|| {
                        ApiError::new(
                            400,
                            "invalid_format",
                            "expected an RFC 3339 time or a date as YYYY-MM-DD",
                        )
                        .field(field)
                    })
            })
            .transpose()
    };
    let to = at("to")?.unwrap_or_else(|| app.clock.now());
    let day = jiff::SignedDuration::from_hours(24);
    let from = match at("from")? {
        Some(f) => f,
        None => to.checked_sub(day * DEFAULT_DAYS as i32).unwrap_or(to),
    };
    if to < from {
        return Err(ApiError::new(400, "out_of_range", "to is before from").field("to"));
    }
    if to.duration_since(from) > day * MAX_DAYS as i32 {
        return Err(ApiError::new(
            400,
            "out_of_range",
            format!("a period covers at most {MAX_DAYS} days"),
        )
        .field("to"));
    }
    Ok((from, to))
}

/// A tracking provider's update for a return parcel (none when the number is no return's): its
/// delivery scan, back at the merchant's, receives the return (the carrier is the actor); any other
/// scan changes nothing.
pub(crate) async fn parcel_update(
    app: &App,
    merchant: &Merchant,
    update: &aftercare::domain::connectors::tracking::TrackingUpdate,
    deadline: Deadline,
) -> Result<Option<Value>, ApiError> {
    use aftercare::domain::shipment::{TrackingStatus, normalise_tracking_number};
    let number = normalise_tracking_number(&update.tracking_number);
    let pointers = app.store.returns_by_tracking(&merchant.id, &number).await?;
    let [pointer] = pointers.as_slice() else {
        if pointers.len() > 1 {
            tracing::warn!(
                returns = pointers.len(),
                "a tracking number on several returns; left alone"
            );
        }
        return Ok(None);
    };
    let delivered = update
        .checkpoints
        .iter()
        .any(|cp| cp.status.trim() == TrackingStatus::Delivered.as_str());
    let record = app
        .store
        .return_record(&merchant.id, &pointer.return_id)
        .await?
        .ok_or_else(|| ApiError::not_found("the return"))?;
    if !delivered {
        return Ok(Some(json!({
            "result": "unchanged", "return_id": record.id, "status": record.status.as_str(),
        })));
    }
    let out = match move_return(
        app,
        merchant,
        &record.id,
        ReturnStatus::Received,
        Actor::Carrier,
        None,
        deadline,
    )
    .await
    {
        Ok(out) => out,
        // Rejected meanwhile: the scan changes nothing.
        Err(ReturnError::WrongStatus { current }) => {
            return Ok(Some(json!({
                "result": "unchanged", "return_id": record.id, "status": current.as_str(),
            })));
        }
        Err(e) => return Err(e.into()),
    };
    Ok(Some(json!({
        "result": if out.changed { "applied" } else { "unchanged" },
        "return_id": out.record.id, "status": out.record.status.as_str(),
        "email": out.email.as_ref().map(SendOutcome::as_str),
    })))
}

/// Figures of one group of returned lines.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    returns: u64,
    units: i64,
    value: i64,
}

impl Tally {
    fn view(&self) -> Value {
        json!({"returns": self.returns, "units": self.units, "value": self.value})
    }
}

/// Units returned over units sold, to four places; `null` where nothing was counted sold (the
/// SKU's orders predate counting, were test orders, or fall outside the period).
fn rate(returned: i64, sold: u64) -> Value {
    match (u64::try_from(returned), sold) {
        (Ok(returned), 1..) => {
            json!((returned as f64 / sold as f64 * 10_000.0).round() / 10_000.0)
        }
        _ => Value::Null,
    }
}

/// `GET /v1/returns/analytics`: see the module docs. Rejected returns count in `by_status` only
/// (nothing came back); amounts are minor units of each currency.
async fn analytics(
    app: &App,
    merchant: &Merchant,
    req: &ApiGatewayV2httpRequest,
) -> Result<(u16, Value), ApiError> {
    use aftercare::domain::returns::Resolution;
    use std::collections::{BTreeMap, BTreeSet};
    let (from, to) = period(app, req)?;
    let found = app.store.returns_between(&merchant.id, from, to).await?;
    let mut currencies: BTreeMap<String, Vec<&ReturnRecord>> = BTreeMap::new();
    let mut by_status: BTreeMap<&str, u64> = BTreeMap::new();
    for r in &found {
        *by_status.entry(r.status.as_str()).or_default() += 1;
        if r.status != ReturnStatus::Rejected {
            currencies
                .entry(r.currency.code().to_owned())
                .or_default()
                .push(r);
        }
    }
    // A SKU's return rate: its units coming back over its units sold on the UTC days the
    // period touches (every currency's orders), one Query per SKU the returns name.
    let utc_day = |t: jiff::Timestamp| t.to_zoned(jiff::tz::TimeZone::UTC).date();
    let skus: BTreeSet<&str> = currencies
        .values()
        .flatten()
        .flat_map(|r| r.lines.iter().map(|l| l.sku.as_str()))
        .collect();
    let sold = app
        .store
        .units_sold(
            &merchant.id,
            &skus.into_iter().collect::<Vec<_>>(),
            utc_day(from),
            utc_day(to),
        )
        .await?;
    let policy = &merchant.settings.returns;
    let per_currency: Vec<Value> = currencies
        .iter()
        .map(|(currency, returns)| {
            let mut total = Tally::default();
            let mut by_sku: BTreeMap<&str, (Tally, &str)> = BTreeMap::new();
            let mut by_reason: BTreeMap<&str, Tally> = BTreeMap::new();
            let mut by_resolution: BTreeMap<&str, Tally> = BTreeMap::new();
            let (mut refunded, mut credit, mut bonus, mut retained) = (0i64, 0i64, 0i64, 0i64);
            for r in returns {
                total.returns += 1;
                let res = by_resolution.entry(r.resolution.as_str()).or_default();
                res.returns += 1;
                let (mut skus, mut reasons) = (BTreeSet::new(), BTreeSet::new());
                for l in &r.lines {
                    total.units += l.quantity;
                    total.value += l.amount;
                    res.units += l.quantity;
                    res.value += l.amount;
                    let (sku, _) = by_sku.entry(&l.sku).or_insert((Tally::default(), &l.name));
                    sku.units += l.quantity;
                    sku.value += l.amount;
                    if skus.insert(l.sku.as_str()) {
                        sku.returns += 1;
                    }
                    let reason = by_reason.entry(&l.reason).or_default();
                    reason.units += l.quantity;
                    reason.value += l.amount;
                    if reasons.insert(l.reason.as_str()) {
                        reason.returns += 1;
                    }
                }
                if r.status == ReturnStatus::Resolved {
                    match r.resolution {
                        Resolution::Refund => refunded += r.amounts.refund,
                        Resolution::StoreCredit => {
                            credit += r.amounts.credit;
                            bonus += r.amounts.credit_bonus;
                            retained += r.amounts.value;
                        }
                        Resolution::Exchange => retained += r.amounts.value,
                    }
                }
            }
            let share = |part: i64| {
                if total.value > 0 {
                    (part as f64 / total.value as f64 * 10_000.0).round() / 10_000.0
                } else {
                    0.0
                }
            };
            let kept = |r: Resolution| by_resolution.get(r.as_str()).map_or(0, |t| t.value);
            json!({
                "currency": currency,
                "totals": total.view(),
                "by_sku": by_sku.iter().map(|(sku, (t, name))| {
                    let mut v = t.view();
                    v["sku"] = (*sku).into();
                    v["name"] = (*name).into();
                    v["share_of_value"] = share(t.value).into();
                    let units_sold = sold.get(*sku).copied().unwrap_or(0);
                    v["units_sold"] = units_sold.into();
                    v["return_rate"] = rate(t.units, units_sold);
                    v
                }).collect::<Vec<_>>(),
                "by_reason": by_reason.iter().map(|(code, t)| {
                    let mut v = t.view();
                    v["reason"] = (*code).into();
                    v["label"] = policy.reason(code).map_or_else(|| (*code).to_owned(), |r| r.label(merchant.default_locale).to_owned()).into();
                    v["share_of_value"] = share(t.value).into();
                    v
                }).collect::<Vec<_>>(),
                "by_resolution": by_resolution.iter().map(|(res, t)| {
                    let mut v = t.view();
                    v["resolution"] = (*res).into();
                    v
                }).collect::<Vec<_>>(),
                "kept_share": share(kept(Resolution::Exchange) + kept(Resolution::StoreCredit)),
                "refunded": refunded,
                "store_credit_issued": credit,
                "store_credit_bonus": bonus,
                "revenue_retained": retained,
            })
        })
        .collect();
    Ok((
        200,
        json!({
            "from": from, "to": to,
            "returns": found.len(),
            "by_status": by_status,
            "currencies": per_currency,
        }),
    ))
}
