//! Returns: the merchant's return policy, what of an order can still come back and why not, the
//! amounts a return is worth, and a return's life from request to resolution.
//!
//! Everything here is a pure decision over its arguments (time included); the use-case
//! ([`crate::usecases::returns`]) reads the order, its delivery and what already came back, asks
//! these functions, and writes the outcome in one conditional transaction.

use super::customer::CustomerRef;
use super::order::Order;
use super::text::{optional_line, single_line, web_url};
use super::{Currency, FieldError, Locale, MerchantId, OrderId};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Most lines one return may carry.
pub const MAX_RETURN_LINES: usize = 100;
/// Most returns one order may have (each one is listed on the order's return tally).
pub const MAX_RETURNS_PER_ORDER: usize = 20;
/// Longest customer comment kept.
pub const MAX_COMMENT: usize = 1_000;

/// What a customer gets for what they send back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// The money back to the original payment method (less any restocking fee).
    Refund,
    /// Store credit for the full value, plus the policy's bonus.
    StoreCredit,
    /// Another variant of the same product, sent as a new order.
    Exchange,
}

impl Resolution {
    pub const ALL: [Resolution; 3] = [
        Resolution::Refund,
        Resolution::StoreCredit,
        Resolution::Exchange,
    ];

    pub const fn as_str(&self) -> &'static str {
        match self {
            Resolution::Refund => "refund",
            Resolution::StoreCredit => "store_credit",
            Resolution::Exchange => "exchange",
        }
    }

    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == value)
            .ok_or_else(|| {
                FieldError::new(
                    field,
                    "invalid_value",
                    "resolution must be refund, store_credit or exchange",
                )
            })
    }
}

/// Where a return stands. It only moves forward: requested → approved → received → resolved,
/// or requested → rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReturnStatus {
    Requested,
    Approved,
    Rejected,
    Received,
    Resolved,
}

impl ReturnStatus {
    pub const ALL: [ReturnStatus; 5] = [
        ReturnStatus::Requested,
        ReturnStatus::Approved,
        ReturnStatus::Rejected,
        ReturnStatus::Received,
        ReturnStatus::Resolved,
    ];

    pub const fn as_str(&self) -> &'static str {
        match self {
            ReturnStatus::Requested => "requested",
            ReturnStatus::Approved => "approved",
            ReturnStatus::Rejected => "rejected",
            ReturnStatus::Received => "received",
            ReturnStatus::Resolved => "resolved",
        }
    }

    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == value)
            .ok_or_else(|| {
                FieldError::new(
                    field,
                    "invalid_value",
                    "status must be requested, approved, rejected, received or resolved",
                )
            })
    }

    /// Whether the return still holds its items (a rejected return gives them back to the order).
    pub fn holds_items(&self) -> bool {
        !matches!(self, ReturnStatus::Rejected)
    }

    /// Whether the return is still under way (the order's feedback survey waits for it).
    pub fn in_progress(&self) -> bool {
        matches!(
            self,
            ReturnStatus::Requested | ReturnStatus::Approved | ReturnStatus::Received
        )
    }

    /// Whether a return may move from `self` to `to`: approve or reject a request; receive an
    /// approved return (receiving a request approves it on the way); resolve what was received,
    /// or an approved return the merchant lets the customer keep.
    pub fn may_move_to(&self, to: ReturnStatus) -> bool {
        use ReturnStatus::*;
        matches!(
            (self, to),
            (Requested, Approved | Rejected | Received)
                | (Approved, Received | Resolved)
                | (Received, Resolved)
        )
    }
}

/// A reason a customer may give, with its label per locale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnReason {
    /// A stable code (`too_small`), what analytics group by.
    pub code: String,
    /// Its label per locale tag (`en`, `de`, `fr`); a missing locale falls back to `en`, then to
    /// the code.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl ReturnReason {
    /// The label in `locale`.
    pub fn label(&self, locale: Locale) -> &str {
        self.labels
            .get(locale.as_str())
            .or_else(|| self.labels.get("en"))
            .map_or(self.code.as_str(), String::as_str)
    }
}

fn reason(code: &str, en: &str, de: &str, fr: &str) -> ReturnReason {
    ReturnReason {
        code: code.to_owned(),
        labels: [("en", en), ("de", de), ("fr", fr)]
            .into_iter()
            .map(|(l, s)| (l.to_owned(), s.to_owned()))
            .collect(),
    }
}

/// The reasons offered when a merchant lists none.
pub fn default_reasons() -> Vec<ReturnReason> {
    vec![
        reason("too_small", "Too small", "Zu klein", "Trop petit"),
        reason("too_large", "Too large", "Zu groß", "Trop grand"),
        reason(
            "not_as_described",
            "Not as described",
            "Entspricht nicht der Beschreibung",
            "Non conforme à la description",
        ),
        reason(
            "damaged",
            "Arrived damaged",
            "Beschädigt angekommen",
            "Arrivé endommagé",
        ),
        reason(
            "wrong_item",
            "Wrong item sent",
            "Falscher Artikel geliefert",
            "Mauvais article reçu",
        ),
        reason(
            "changed_mind",
            "Changed my mind",
            "Ich habe es mir anders überlegt",
            "J'ai changé d'avis",
        ),
    ]
}

/// How the parcel comes back.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ReturnShipping {
    /// A prepaid label the merchant's carrier integration returns (an `https://` URL).
    pub label_url: Option<String>,
    /// What to do with the parcel (in the merchant's words).
    pub instructions: Option<String>,
    /// Where to send it (several lines).
    pub address: Option<String>,
}

/// When a request is approved without the merchant looking at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AutoApproval {
    pub enabled: bool,
    /// Only returns worth at most this much (minor units of the order's currency); none: any.
    pub max_value: Option<i64>,
}

/// A merchant's return policy (`settings.returns`). Off until the merchant turns it on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReturnPolicy {
    pub enabled: bool,
    /// Days a customer has, from the delivery of the order (from the order when it was never
    /// delivered).
    pub window_days: u32,
    /// SKUs that cannot come back (final sale, hygiene).
    pub excluded_skus: Vec<String>,
    /// Product categories that cannot come back (the catalogue's `category`).
    pub excluded_categories: Vec<String>,
    /// The reasons offered; empty: [`default_reasons`].
    pub reasons: Vec<ReturnReason>,
    /// What the customer may choose.
    pub resolutions: Vec<Resolution>,
    /// Bonus on store credit, in percent of the returned value (0 to 100).
    pub credit_bonus_percent: u32,
    pub auto_approve: AutoApproval,
    pub shipping: ReturnShipping,
    /// Kept from a refund, in percent of the returned value (0 to 50); never from store credit or
    /// an exchange.
    pub restocking_fee_percent: u32,
    /// Days after approval a customer who has not sent the parcel gets one reminder (0: none).
    pub reminder_days: u32,
    /// How the customer spends store credit (shown in the credit email).
    pub credit_instructions: Option<String>,
}

impl Default for ReturnPolicy {
    fn default() -> Self {
        Self {
            enabled: false,
            window_days: 30,
            excluded_skus: Vec::new(),
            excluded_categories: Vec::new(),
            reasons: Vec::new(),
            resolutions: vec![Resolution::Refund],
            credit_bonus_percent: 0,
            auto_approve: AutoApproval::default(),
            shipping: ReturnShipping::default(),
            restocking_fee_percent: 0,
            reminder_days: 7,
            credit_instructions: None,
        }
    }
}

impl ReturnPolicy {
    /// The reasons offered.
    pub fn reasons(&self) -> Vec<ReturnReason> {
        if self.reasons.is_empty() {
            default_reasons()
        } else {
            self.reasons.clone()
        }
    }

    /// The reason with `code`, if offered.
    pub fn reason(&self, code: &str) -> Option<ReturnReason> {
        self.reasons().into_iter().find(|r| r.code == code)
    }

    /// Checks the policy as a merchant sends it; the first problem names its field.
    pub fn validate(&self) -> Result<(), FieldError> {
        const AT: &str = "settings.returns";
        let field = |f: &str| format!("{AT}.{f}");
        if !(1..=365).contains(&self.window_days) {
            return Err(FieldError::new(
                field("window_days"),
                "out_of_range",
                "window_days must be 1 to 365",
            ));
        }
        if self.credit_bonus_percent > 100 {
            return Err(FieldError::new(
                field("credit_bonus_percent"),
                "out_of_range",
                "credit_bonus_percent must be 0 to 100",
            ));
        }
        if self.restocking_fee_percent > 50 {
            return Err(FieldError::new(
                field("restocking_fee_percent"),
                "out_of_range",
                "restocking_fee_percent must be 0 to 50",
            ));
        }
        if self.reminder_days > 60 {
            return Err(FieldError::new(
                field("reminder_days"),
                "out_of_range",
                "reminder_days must be 0 to 60",
            ));
        }
        if self.resolutions.is_empty() {
            return Err(FieldError::new(
                field("resolutions"),
                "required",
                "offer at least one of refund, store_credit, exchange",
            ));
        }
        if let Some(max) = self.auto_approve.max_value
            && max < 0
        {
            return Err(FieldError::new(
                field("auto_approve.max_value"),
                "negative_amount",
                "max_value must not be negative",
            ));
        }
        for (i, sku) in self.excluded_skus.iter().enumerate() {
            single_line(&field(&format!("excluded_skus[{i}]")), sku, 100)?;
        }
        for (i, c) in self.excluded_categories.iter().enumerate() {
            single_line(&field(&format!("excluded_categories[{i}]")), c, 100)?;
        }
        if self.reasons.len() > 30 {
            return Err(FieldError::new(
                field("reasons"),
                "too_many",
                "at most 30 reasons",
            ));
        }
        for (i, r) in self.reasons.iter().enumerate() {
            let at = field(&format!("reasons[{i}]"));
            let ok = !r.code.is_empty()
                && r.code.len() <= 40
                && r.code
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !ok {
                return Err(FieldError::new(
                    format!("{at}.code"),
                    "invalid_format",
                    "a reason code is 1 to 40 of a-z, 0-9 and _",
                ));
            }
            for (locale, label) in &r.labels {
                if Locale::from_tag(locale).is_none() {
                    return Err(FieldError::new(
                        format!("{at}.labels"),
                        "unsupported_locale",
                        "labels are keyed by en, de or fr",
                    ));
                }
                single_line(&format!("{at}.labels.{locale}"), label, 80)?;
            }
        }
        web_url(
            &field("shipping.label_url"),
            self.shipping.label_url.as_deref(),
        )?;
        multi_line(
            &field("shipping.instructions"),
            self.shipping.instructions.as_deref(),
            1_000,
        )?;
        multi_line(
            &field("shipping.address"),
            self.shipping.address.as_deref(),
            400,
        )?;
        optional_line(
            &field("credit_instructions"),
            self.credit_instructions.as_deref(),
            400,
        )?;
        Ok(())
    }

    /// Whether `sku` (of `category`, when the catalogue knows it) is excluded.
    pub fn excludes(&self, sku: &str, category: Option<&str>) -> bool {
        self.excluded_skus.iter().any(|s| s == sku)
            || category.is_some_and(|c| {
                self.excluded_categories
                    .iter()
                    .any(|e| e.eq_ignore_ascii_case(c))
            })
    }

    /// The bonus on `value` of store credit.
    pub fn credit_bonus(&self, value: i64) -> i64 {
        percent_of(value, self.credit_bonus_percent)
    }

    /// The restocking fee kept from a refund of `value`.
    pub fn restocking_fee(&self, value: i64) -> i64 {
        percent_of(value, self.restocking_fee_percent)
    }
}

/// Free text over several lines: no control characters but line breaks, at most `max` chars.
pub fn multi_line(
    field: &str,
    value: Option<&str>,
    max: usize,
) -> Result<Option<String>, FieldError> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if v.chars().count() > max {
        return Err(FieldError::new(
            field,
            "too_long",
            format!("{field} must be at most {max} characters"),
        ));
    }
    if v.chars().any(|c| c != '\n' && super::text::is_forbidden(c)) {
        return Err(FieldError::new(
            field,
            "invalid_characters",
            format!("{field} contains control characters"),
        ));
    }
    Ok(Some(v.replace("\r\n", "\n")))
}

/// `percent` % of `value`, rounded half up, in minor units.
fn percent_of(value: i64, percent: u32) -> i64 {
    if value <= 0 || percent == 0 {
        return 0;
    }
    let v = i128::from(value) * i128::from(percent);
    i64::try_from((v + 50) / 100).unwrap_or(value)
}

/// Why a line of an order cannot come back (any more).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotReturnable {
    /// The merchant does not take returns.
    ReturnsOff,
    /// The return window closed.
    WindowClosed,
    /// The merchant excludes the SKU or its category.
    Excluded,
    /// Every unit is already in another return.
    AlreadyReturned,
}

impl NotReturnable {
    pub const fn as_str(&self) -> &'static str {
        match self {
            NotReturnable::ReturnsOff => "returns_off",
            NotReturnable::WindowClosed => "window_closed",
            NotReturnable::Excluded => "excluded",
            NotReturnable::AlreadyReturned => "already_returned",
        }
    }
}

/// One line of an order as a return sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineEligibility {
    pub sku: String,
    pub name: String,
    pub ordered: i64,
    /// Units already in other returns (not rejected ones).
    pub returned: i64,
    /// Units that may still come back.
    pub returnable: i64,
    pub unit_price: i64,
    /// Why none may, if so.
    pub blocked: Option<NotReturnable>,
}

/// What of an order may still come back, line by line, and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Eligibility {
    /// When the window closes.
    pub window_ends: Timestamp,
    /// Whether the window is counted from the delivery (else from the order).
    pub from_delivery: bool,
    pub lines: Vec<LineEligibility>,
}

impl Eligibility {
    /// Whether anything may come back.
    pub fn any(&self) -> bool {
        self.lines.iter().any(|l| l.returnable > 0)
    }

    pub fn line(&self, sku: &str) -> Option<&LineEligibility> {
        self.lines.iter().find(|l| l.sku == sku)
    }
}

/// What may still come back of `order`, delivered at `delivered_at` (if it was), with `returned`
/// units per SKU already in other returns, at `now`; `category` gives a SKU's catalogue category.
pub fn eligibility(
    policy: &ReturnPolicy,
    order: &Order,
    delivered_at: Option<Timestamp>,
    returned: &BTreeMap<String, i64>,
    category: impl Fn(&str) -> Option<String>,
    now: Timestamp,
) -> Eligibility {
    let from = delivered_at.unwrap_or(order.placed_at);
    let window = SignedDuration::from_hours(i64::from(policy.window_days) * 24);
    let window_ends = from.checked_add(window).unwrap_or(from);
    let open = now <= window_ends;
    // An order may list a SKU on several lines: they share what came back, first line first.
    let mut taken: BTreeMap<&str, i64> = BTreeMap::new();
    let lines = order
        .items
        .iter()
        .map(|item| {
            let already = returned.get(&item.sku).copied().unwrap_or(0);
            let used = taken.entry(item.sku.as_str()).or_default();
            let this_line = (already - *used).clamp(0, item.quantity);
            *used += this_line;
            let left = item.quantity - this_line;
            let blocked = if !policy.enabled {
                Some(NotReturnable::ReturnsOff)
            } else if policy.excludes(&item.sku, category(&item.sku).as_deref()) {
                Some(NotReturnable::Excluded)
            } else if left == 0 {
                Some(NotReturnable::AlreadyReturned)
            } else if !open {
                Some(NotReturnable::WindowClosed)
            } else {
                None
            };
            LineEligibility {
                sku: item.sku.clone(),
                name: item.name.clone(),
                ordered: item.quantity,
                returned: this_line,
                returnable: if blocked.is_some() { 0 } else { left },
                unit_price: item.unit_price,
                blocked,
            }
        })
        .collect();
    Eligibility {
        window_ends,
        from_delivery: delivered_at.is_some(),
        lines,
    }
}

/// A return as a customer (portal) or the merchant (API) asks for it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ReturnInput {
    pub items: Vec<ReturnLineInput>,
    pub resolution: String,
    #[serde(default)]
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ReturnLineInput {
    pub sku: String,
    pub quantity: i64,
    pub reason: String,
    /// For an exchange: the variant wanted instead.
    #[serde(default)]
    pub exchange_sku: Option<String>,
}

/// One line of a return.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnLine {
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    pub unit_price: i64,
    /// `unit_price × quantity`.
    pub amount: i64,
    /// The reason's code.
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange_sku: Option<String>,
}

/// What a return is worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReturnAmounts {
    /// The returned lines' value.
    pub value: i64,
    /// Kept from a refund.
    pub restocking_fee: i64,
    /// Refunded (refund only): value − fee.
    pub refund: i64,
    /// Store credit (store credit only): the value.
    pub credit: i64,
    /// Bonus on that credit.
    pub credit_bonus: i64,
}

/// Who moved a return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    Customer,
    Merchant,
    /// The auto-approval rule of the policy.
    Policy,
    /// The carrier's delivery scan of the return parcel.
    Carrier,
}

/// One move of a return.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    pub status: ReturnStatus,
    pub at: Timestamp,
    pub by: Actor,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Where a return was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReturnSource {
    /// The customer's return page.
    Portal,
    /// The merchant's API.
    Api,
}

/// The parcel on its way back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnParcel {
    pub tracking_number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
}

/// A return as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnRecord {
    pub id: super::ids::ReturnId,
    pub merchant_id: MerchantId,
    pub order_id: OrderId,
    pub customer: CustomerRef,
    pub currency: Currency,
    pub lines: Vec<ReturnLine>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub resolution: Resolution,
    pub status: ReturnStatus,
    pub amounts: ReturnAmounts,
    pub source: ReturnSource,
    /// Whether it was asked for inside the window (a merchant may create one outside it).
    pub within_window: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Every move, oldest first (the request included).
    pub history: Vec<StatusChange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejection_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parcel: Option<ReturnParcel>,
    /// When an approved parcel should be on its way (approval + the policy's reminder days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_by: Option<Timestamp>,
    /// When the customer was reminded to send it (once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reminded_at: Option<Timestamp>,
    /// The store credit given when resolved as store credit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit: Option<CreditFigures>,
    /// Resolved as a refund the shop or the payment provider had already reported: that refund
    /// is this return's (its email told the customer, its reversal took the points back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_reported: Option<ReportedRefund>,
    /// The request's content hash: a replay with other content is refused.
    pub content_hash: String,
    /// Bumped by every move (the store's condition).
    pub version: u32,
}

impl ReturnRecord {
    /// Units of each SKU the return holds.
    pub fn units(&self) -> BTreeMap<String, i64> {
        let mut out = BTreeMap::new();
        for l in &self.lines {
            *out.entry(l.sku.clone()).or_default() += l.quantity;
        }
        out
    }

    /// When it reached `status`, if it did.
    pub fn reached(&self, status: ReturnStatus) -> Option<Timestamp> {
        self.history
            .iter()
            .find(|c| c.status == status)
            .map(|c| c.at)
    }

    /// The return's number as a customer reads it.
    pub fn number(&self) -> String {
        self.id.as_str().to_ascii_uppercase()
    }

    /// The record after moving to `to` at `now` by `by` (its version bumped); `None` when the
    /// move is not allowed from where it stands.
    pub fn moved(
        &self,
        to: ReturnStatus,
        by: Actor,
        note: Option<String>,
        send_by: Option<Timestamp>,
        now: Timestamp,
    ) -> Option<ReturnRecord> {
        if !self.status.may_move_to(to) {
            return None;
        }
        let mut next = self.clone();
        // Receiving a request approves it on the way (the history says so).
        if self.status == ReturnStatus::Requested && to == ReturnStatus::Received {
            next.history.push(StatusChange {
                status: ReturnStatus::Approved,
                at: now,
                by,
                note: None,
            });
        }
        if to == ReturnStatus::Rejected {
            next.rejection_reason = note.clone();
        }
        if to == ReturnStatus::Approved {
            next.send_by = send_by;
        }
        next.history.push(StatusChange {
            status: to,
            at: now,
            by,
            note,
        });
        next.status = to;
        next.updated_at = now;
        next.version = self.version.saturating_add(1);
        Some(next)
    }
}

/// Store credit given for a return: the amount, its bonus, and the customer's balance after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditFigures {
    pub amount: i64,
    pub bonus: i64,
    pub balance: i64,
}

impl CreditFigures {
    pub fn total(&self) -> i64 {
        self.amount.saturating_add(self.bonus)
    }
}

/// A request turned into a return, or the first field that stops it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    pub lines: Vec<ReturnLine>,
    pub resolution: Resolution,
    pub comment: Option<String>,
    pub amounts: ReturnAmounts,
    pub within_window: bool,
    /// Whether the policy approves it at once.
    pub auto_approved: bool,
}

/// Who asks: a customer is held to the policy; a merchant may go past the window and the
/// exclusions (their call), never past what was ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requester {
    Customer,
    Merchant,
}

/// Decides a request against what may come back. `variant_exists` says whether an exchange SKU is
/// in the catalogue.
pub fn decide(
    policy: &ReturnPolicy,
    eligibility: &Eligibility,
    input: &ReturnInput,
    who: Requester,
    variant_exists: impl Fn(&str) -> bool,
) -> Result<Decided, FieldError> {
    if who == Requester::Customer && !policy.enabled {
        return Err(FieldError::new(
            "items",
            "returns_off",
            "this shop does not take returns online; please contact it",
        ));
    }
    let resolution = Resolution::parse("resolution", input.resolution.trim())?;
    if who == Requester::Customer && !policy.resolutions.contains(&resolution) {
        return Err(FieldError::new(
            "resolution",
            "not_offered",
            format!("this shop does not offer {}", resolution.as_str()),
        ));
    }
    if input.items.is_empty() {
        return Err(FieldError::new(
            "items",
            "required",
            "pick at least one item to return",
        ));
    }
    if input.items.len() > MAX_RETURN_LINES {
        return Err(FieldError::new(
            "items",
            "too_many",
            format!("a return may have at most {MAX_RETURN_LINES} lines"),
        ));
    }
    let comment = match input.comment.as_deref() {
        Some(c) => multi_line("comment", Some(c), MAX_COMMENT)?,
        None => None,
    };
    let mut asked: BTreeMap<&str, i64> = BTreeMap::new();
    let mut lines = Vec::with_capacity(input.items.len());
    for (i, item) in input.items.iter().enumerate() {
        let at = |f: &str| format!("items[{i}].{f}");
        let sku = item.sku.trim();
        let line = eligibility.line(sku).ok_or_else(|| {
            FieldError::new(at("sku"), "not_in_order", "this item is not in the order")
        })?;
        if item.quantity < 1 {
            return Err(FieldError::new(
                at("quantity"),
                "out_of_range",
                "quantity must be at least 1",
            ));
        }
        let total = asked.entry(line.sku.as_str()).or_default();
        *total = total.saturating_add(item.quantity);
        let ordered_left = line.ordered - line.returned;
        let allowed = match (who, line.blocked) {
            (Requester::Merchant, Some(NotReturnable::AlreadyReturned) | None) => line.returnable,
            (Requester::Merchant, Some(_)) => ordered_left.max(0),
            (Requester::Customer, _) => line.returnable,
        };
        if *total > allowed {
            let (code, message) = match line.blocked {
                Some(b) if allowed == 0 => (b.as_str(), not_returnable_message(b)),
                _ => (
                    "too_many",
                    format!("at most {allowed} of this item may be returned"),
                ),
            };
            return Err(FieldError::new(at("quantity"), code, message));
        }
        let reason = item.reason.trim();
        if policy.reason(reason).is_none() {
            return Err(FieldError::new(
                at("reason"),
                "invalid_value",
                "pick one of the reasons offered",
            ));
        }
        let exchange_sku = match (resolution, item.exchange_sku.as_deref().map(str::trim)) {
            (Resolution::Exchange, Some(v)) if !v.is_empty() => {
                let v = single_line(&at("exchange_sku"), v, 100)?;
                if !variant_exists(&v) && v != line.sku {
                    return Err(FieldError::new(
                        at("exchange_sku"),
                        "unknown_product",
                        "the variant asked for is not in the catalogue",
                    ));
                }
                Some(v)
            }
            (Resolution::Exchange, _) => Some(line.sku.clone()),
            _ => None,
        };
        let amount = line.unit_price.saturating_mul(item.quantity);
        lines.push(ReturnLine {
            sku: line.sku.clone(),
            name: line.name.clone(),
            quantity: item.quantity,
            unit_price: line.unit_price,
            amount,
            reason: reason.to_owned(),
            exchange_sku,
        });
    }
    let value = lines
        .iter()
        .map(|l| l.amount)
        .fold(0_i64, i64::saturating_add);
    let amounts = match resolution {
        Resolution::Refund => {
            let fee = policy.restocking_fee(value);
            ReturnAmounts {
                value,
                restocking_fee: fee,
                refund: value - fee,
                ..ReturnAmounts::default()
            }
        }
        Resolution::StoreCredit => ReturnAmounts {
            value,
            credit: value,
            credit_bonus: policy.credit_bonus(value),
            ..ReturnAmounts::default()
        },
        Resolution::Exchange => ReturnAmounts {
            value,
            ..ReturnAmounts::default()
        },
    };
    let within_window = lines.iter().all(|l| {
        eligibility
            .line(&l.sku)
            .is_some_and(|e| e.blocked.is_none())
    });
    let auto_approved = who == Requester::Customer
        && policy.auto_approve.enabled
        && within_window
        && policy.auto_approve.max_value.is_none_or(|max| value <= max);
    Ok(Decided {
        lines,
        resolution,
        comment,
        amounts,
        within_window,
        auto_approved,
    })
}

fn not_returnable_message(why: NotReturnable) -> String {
    match why {
        NotReturnable::ReturnsOff => "this shop does not take returns online",
        NotReturnable::WindowClosed => "the return window for this order has closed",
        NotReturnable::Excluded => "this item cannot be returned",
        NotReturnable::AlreadyReturned => "every unit of this item is already being returned",
    }
    .to_owned()
}

/// The content hash of a request (order and what was asked), to tell a replay from a conflict.
pub fn request_hash(order: &OrderId, input: &ReturnInput) -> String {
    let mut h = Sha256::new();
    h.update(order.as_str().as_bytes());
    h.update([0]);
    h.update(serde_json::to_vec(input).unwrap_or_default());
    hex::encode(&h.finalize()[..16])
}

/// A return's id from the key its request was made under (the API's `Idempotency-Key`, the
/// portal form's one-time key): the same key always names the same return, so a re-submission
/// finds it instead of creating another. `r` + 16 hex digits of SHA-256 over merchant, order and
/// key.
pub fn return_id(
    merchant: &MerchantId,
    order: &OrderId,
    key: &str,
) -> Result<super::ids::ReturnId, FieldError> {
    let mut h = Sha256::new();
    for part in [merchant.as_str(), order.as_str(), key] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    super::ids::ReturnId::parse("id", &format!("r{}", hex::encode(&h.finalize()[..8])))
}

/// What already came back of an order: units per SKU held by its returns (rejected ones give
/// theirs back), and the returns themselves.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReturnTally {
    #[serde(default)]
    pub units: BTreeMap<String, i64>,
    #[serde(default)]
    pub returns: Vec<super::ids::ReturnId>,
    /// The returns still under way (requested, approved or received): the order's feedback
    /// survey waits for them.
    #[serde(default)]
    pub open: Vec<super::ids::ReturnId>,
    /// Bumped by every change (the store's condition); 0 when the order has none yet.
    #[serde(default)]
    pub version: u32,
    /// Refunds of the order the shop or the payment provider reported when no return of it was
    /// resolved as a refund of that amount (noted by billing, at most once each).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refunds: Vec<ReportedRefund>,
    /// The subjects of those refunds a return adopted as its own (each adopted once).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adopted: Vec<String>,
}

/// A refund reported for an order before a return paid by it was resolved: when that return is
/// resolved as a refund of the same amount it adopts this one, so the customer is told once (this
/// refund's "refund issued" email) and the points go back once (under this refund's source).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportedRefund {
    /// The refund's id as billing posts its points reversal (`refund:<id>`).
    pub id: String,
    /// Its "refund issued" email's subject.
    pub subject: String,
    pub amount: i64,
    pub currency: String,
}

impl ReturnTally {
    /// A reported refund of `amount` in `currency` no return adopted yet.
    pub fn unadopted_refund(&self, amount: i64, currency: &str) -> Option<&ReportedRefund> {
        self.refunds.iter().find(|r| {
            r.amount == amount && r.currency == currency && !self.adopted.contains(&r.subject)
        })
    }

    /// The tally once `refund` is adopted by a return.
    pub fn adopting(mut self, refund: &ReportedRefund) -> ReturnTally {
        if !self.adopted.contains(&refund.subject) {
            self.adopted.push(refund.subject.clone());
        }
        self
    }

    /// The tally once `record` is added.
    pub fn with(&self, record: &ReturnRecord) -> ReturnTally {
        let mut next = self.clone();
        for (sku, n) in record.units() {
            *next.units.entry(sku).or_default() += n;
        }
        next.returns.push(record.id.clone());
        next.open.push(record.id.clone());
        next.version = self.version.saturating_add(1);
        next
    }

    /// The tally once `record` is settled (resolved): no longer under way.
    pub fn settled(&self, record: &ReturnRecord) -> ReturnTally {
        let mut next = self.clone();
        next.open.retain(|r| *r != record.id);
        next.version = self.version.saturating_add(1);
        next
    }

    /// The tally once `record`'s units are given back (it was rejected).
    pub fn without_units_of(&self, record: &ReturnRecord) -> ReturnTally {
        let mut next = self.clone();
        for (sku, n) in record.units() {
            if let Some(have) = next.units.get_mut(&sku) {
                *have = (*have - n).max(0);
            }
        }
        next.units.retain(|_, n| *n > 0);
        next.open.retain(|r| *r != record.id);
        next.version = self.version.saturating_add(1);
        next
    }

    /// Whether a return of the order is under way.
    pub fn any_open(&self) -> bool {
        !self.open.is_empty()
    }
}

/// Of `returns`, the one a refund of `amount` pays: resolved (or on its way to being resolved) as
/// a refund of exactly that amount.
pub fn refunded_by(
    returns: &[crate::domain::returns::ReturnRecord],
    amount: i64,
) -> Option<crate::domain::ids::ReturnId> {
    use crate::domain::returns::{Resolution, ReturnStatus};
    returns
        .iter()
        .filter(|r| r.resolution == Resolution::Refund && r.status != ReturnStatus::Rejected)
        // One that adopted a refund reported earlier is paid by that one.
        .filter(|r| r.refund_reported.is_none())
        .find(|r| r.amounts.refund == amount)
        .map(|r| r.id.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::order::LineItem;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn order() -> Order {
        let item = |sku: &str, q: i64, p: i64| LineItem {
            sku: sku.into(),
            name: format!("{sku} name"),
            quantity: q,
            unit_price: p,
            line_total: q * p,
            url: None,
            image_url: None,
        };
        Order {
            id: OrderId::parse("id", "1042").unwrap(),
            placed_at: ts("2026-11-01T10:00:00Z"),
            currency: Currency::parse("c", "EUR").unwrap(),
            customer: CustomerRef {
                id: crate::domain::CustomerId::parse("id", "c1").unwrap(),
                email: None,
                first_name: None,
                last_name: None,
                locale: None,
                time_zone: None,
            },
            items: vec![
                item("SHOE", 2, 8_900),
                item("SOCK", 3, 1_000),
                item("GIFT", 1, 2_500),
            ],
            subtotal: 23_300,
            shipping: 0,
            tax: 0,
            discount: 0,
            total: 23_300,
            referral_code: None,
            test: false,
        }
    }

    fn policy() -> ReturnPolicy {
        ReturnPolicy {
            enabled: true,
            excluded_skus: vec!["GIFT".into()],
            resolutions: Resolution::ALL.to_vec(),
            credit_bonus_percent: 10,
            restocking_fee_percent: 5,
            ..ReturnPolicy::default()
        }
    }

    fn input(items: &[(&str, i64)], resolution: &str) -> ReturnInput {
        ReturnInput {
            items: items
                .iter()
                .map(|(sku, q)| ReturnLineInput {
                    sku: (*sku).into(),
                    quantity: *q,
                    reason: "too_small".into(),
                    exchange_sku: None,
                })
                .collect(),
            resolution: resolution.into(),
            comment: None,
        }
    }

    #[test]
    fn the_window_counts_from_delivery_else_from_the_order() {
        let p = policy();
        let o = order();
        let none = BTreeMap::new();
        let delivered = ts("2026-11-05T10:00:00Z");
        let e = eligibility(
            &p,
            &o,
            Some(delivered),
            &none,
            |_| None,
            ts("2026-12-05T09:00:00Z"),
        );
        assert!(e.from_delivery);
        assert_eq!(e.window_ends, ts("2026-12-05T10:00:00Z"));
        assert_eq!(e.line("SHOE").unwrap().returnable, 2);
        let late = eligibility(
            &p,
            &o,
            Some(delivered),
            &none,
            |_| None,
            ts("2026-12-05T10:00:01Z"),
        );
        assert_eq!(
            late.line("SHOE").unwrap().blocked,
            Some(NotReturnable::WindowClosed)
        );
        assert!(!late.any());
        let undelivered = eligibility(&p, &o, None, &none, |_| None, ts("2026-12-01T10:00:01Z"));
        assert!(!undelivered.from_delivery);
        assert_eq!(undelivered.window_ends, ts("2026-12-01T10:00:00Z"));
        assert!(!undelivered.any());
    }

    #[test]
    fn exclusions_by_sku_and_category_and_what_already_came_back() {
        let p = ReturnPolicy {
            excluded_categories: vec!["Hygiene".into()],
            ..policy()
        };
        let returned = BTreeMap::from([("SHOE".to_owned(), 2), ("SOCK".to_owned(), 1)]);
        let e = eligibility(
            &p,
            &order(),
            None,
            &returned,
            |sku| (sku == "SOCK").then(|| "hygiene".to_owned()),
            ts("2026-11-02T10:00:00Z"),
        );
        assert_eq!(
            e.line("SHOE").unwrap().blocked,
            Some(NotReturnable::AlreadyReturned)
        );
        assert_eq!(
            e.line("SOCK").unwrap().blocked,
            Some(NotReturnable::Excluded)
        );
        assert_eq!(
            e.line("GIFT").unwrap().blocked,
            Some(NotReturnable::Excluded)
        );
        assert!(!e.any());
    }

    #[test]
    fn partial_quantities_and_the_amounts_of_each_resolution() {
        let p = policy();
        let e = eligibility(
            &p,
            &order(),
            None,
            &BTreeMap::new(),
            |_| None,
            ts("2026-11-02T10:00:00Z"),
        );
        let refund = decide(
            &p,
            &e,
            &input(&[("SHOE", 1), ("SOCK", 2)], "refund"),
            Requester::Customer,
            |_| true,
        )
        .unwrap();
        assert_eq!(refund.amounts.value, 10_900);
        assert_eq!(refund.amounts.restocking_fee, 545);
        assert_eq!(refund.amounts.refund, 10_355);
        assert_eq!(refund.amounts.credit, 0);
        let credit = decide(
            &p,
            &e,
            &input(&[("SHOE", 1)], "store_credit"),
            Requester::Customer,
            |_| true,
        )
        .unwrap();
        assert_eq!(
            (credit.amounts.credit, credit.amounts.credit_bonus),
            (8_900, 890)
        );
        assert_eq!(credit.amounts.restocking_fee, 0);
        let mut ex = input(&[("SHOE", 1)], "exchange");
        ex.items[0].exchange_sku = Some("SHOE-43".into());
        let exchange = decide(&p, &e, &ex, Requester::Customer, |s| s == "SHOE-43").unwrap();
        assert_eq!(exchange.lines[0].exchange_sku.as_deref(), Some("SHOE-43"));
        assert_eq!(exchange.amounts.refund + exchange.amounts.credit, 0);
        let err = decide(&p, &e, &ex, Requester::Customer, |_| false).unwrap_err();
        assert_eq!(err.field, "items[0].exchange_sku");
    }

    #[test]
    fn refusals_name_their_field() {
        let p = policy();
        let e = eligibility(
            &p,
            &order(),
            None,
            &BTreeMap::new(),
            |_| None,
            ts("2026-11-02T10:00:00Z"),
        );
        let check = |i: ReturnInput, field: &str, code: &str| {
            let err = decide(&p, &e, &i, Requester::Customer, |_| true).unwrap_err();
            assert_eq!((err.field.as_str(), err.code), (field, code), "{err:?}");
        };
        check(
            input(&[("SHOE", 3)], "refund"),
            "items[0].quantity",
            "too_many",
        );
        check(
            input(&[("SHOE", 1), ("SHOE", 2)], "refund"),
            "items[1].quantity",
            "too_many",
        );
        check(
            input(&[("GIFT", 1)], "refund"),
            "items[0].quantity",
            "excluded",
        );
        check(
            input(&[("HAT", 1)], "refund"),
            "items[0].sku",
            "not_in_order",
        );
        check(
            input(&[("SHOE", 0)], "refund"),
            "items[0].quantity",
            "out_of_range",
        );
        check(input(&[], "refund"), "items", "required");
        check(input(&[("SHOE", 1)], "cash"), "resolution", "invalid_value");
        let mut bad_reason = input(&[("SHOE", 1)], "refund");
        bad_reason.items[0].reason = "bored".into();
        check(bad_reason, "items[0].reason", "invalid_value");
        let only_refund = ReturnPolicy {
            resolutions: vec![Resolution::Refund],
            ..policy()
        };
        let err = decide(
            &only_refund,
            &e,
            &input(&[("SHOE", 1)], "store_credit"),
            Requester::Customer,
            |_| true,
        )
        .unwrap_err();
        assert_eq!(
            (err.field.as_str(), err.code),
            ("resolution", "not_offered")
        );
        let off = ReturnPolicy {
            enabled: false,
            ..policy()
        };
        let err = decide(
            &off,
            &e,
            &input(&[("SHOE", 1)], "refund"),
            Requester::Customer,
            |_| true,
        )
        .unwrap_err();
        assert_eq!(err.code, "returns_off");
    }

    #[test]
    fn a_merchant_may_go_past_the_window_and_exclusions_never_past_the_order() {
        let p = policy();
        let late = eligibility(
            &p,
            &order(),
            None,
            &BTreeMap::new(),
            |_| None,
            ts("2027-01-02T10:00:00Z"),
        );
        let d = decide(
            &p,
            &late,
            &input(&[("SHOE", 2), ("GIFT", 1)], "refund"),
            Requester::Merchant,
            |_| true,
        )
        .unwrap();
        assert!(!d.within_window);
        assert!(!d.auto_approved);
        let err = decide(
            &p,
            &late,
            &input(&[("SHOE", 3)], "refund"),
            Requester::Merchant,
            |_| true,
        )
        .unwrap_err();
        assert_eq!(err.field, "items[0].quantity");
        assert!(
            decide(
                &p,
                &late,
                &input(&[("SHOE", 1)], "refund"),
                Requester::Customer,
                |_| true
            )
            .is_err()
        );
    }

    #[test]
    fn auto_approval_within_the_window_and_under_the_amount() {
        let mut p = policy();
        p.auto_approve = AutoApproval {
            enabled: true,
            max_value: Some(5_000),
        };
        let e = eligibility(
            &p,
            &order(),
            None,
            &BTreeMap::new(),
            |_| None,
            ts("2026-11-02T10:00:00Z"),
        );
        let small = decide(
            &p,
            &e,
            &input(&[("SOCK", 2)], "refund"),
            Requester::Customer,
            |_| true,
        )
        .unwrap();
        assert!(small.auto_approved);
        let big = decide(
            &p,
            &e,
            &input(&[("SHOE", 1)], "refund"),
            Requester::Customer,
            |_| true,
        )
        .unwrap();
        assert!(!big.auto_approved);
        p.auto_approve.enabled = false;
        let off = decide(
            &p,
            &e,
            &input(&[("SOCK", 1)], "refund"),
            Requester::Customer,
            |_| true,
        )
        .unwrap();
        assert!(!off.auto_approved);
    }

    #[test]
    fn statuses_only_move_forward() {
        use ReturnStatus::*;
        for from in ReturnStatus::ALL {
            for to in ReturnStatus::ALL {
                let allowed = from.may_move_to(to);
                let expected = matches!(
                    (from, to),
                    (Requested, Approved | Rejected | Received)
                        | (Approved, Received | Resolved)
                        | (Received, Resolved)
                );
                assert_eq!(allowed, expected, "{from:?} → {to:?}");
            }
        }
        assert!(!Rejected.holds_items());
        assert!(Approved.in_progress() && !Resolved.in_progress());
    }

    #[test]
    fn a_received_request_is_approved_on_the_way_and_the_tally_gives_back_rejections() {
        let p = policy();
        let e = eligibility(
            &p,
            &order(),
            None,
            &BTreeMap::new(),
            |_| None,
            ts("2026-11-02T10:00:00Z"),
        );
        let d = decide(
            &p,
            &e,
            &input(&[("SHOE", 1), ("SHOE", 1)], "refund"),
            Requester::Customer,
            |_| true,
        )
        .unwrap();
        let at = ts("2026-11-03T10:00:00Z");
        let record = ReturnRecord {
            id: return_id(&MerchantId::parse("m", "m1").unwrap(), &order().id, "k").unwrap(),
            merchant_id: MerchantId::parse("m", "m1").unwrap(),
            order_id: order().id,
            customer: order().customer,
            currency: order().currency,
            lines: d.lines,
            comment: None,
            resolution: d.resolution,
            status: ReturnStatus::Requested,
            amounts: d.amounts,
            source: ReturnSource::Portal,
            within_window: true,
            created_at: at,
            updated_at: at,
            history: vec![StatusChange {
                status: ReturnStatus::Requested,
                at,
                by: Actor::Customer,
                note: None,
            }],
            rejection_reason: None,
            parcel: None,
            send_by: None,
            reminded_at: None,
            credit: None,
            refund_reported: None,
            content_hash: "h".into(),
            version: 1,
        };
        assert_eq!(record.units().get("SHOE"), Some(&2));
        let received = record
            .moved(ReturnStatus::Received, Actor::Merchant, None, None, at)
            .unwrap();
        assert_eq!(received.reached(ReturnStatus::Approved), Some(at));
        assert_eq!(received.version, 2);
        assert!(
            received
                .moved(ReturnStatus::Approved, Actor::Merchant, None, None, at)
                .is_none()
        );
        let tally = ReturnTally::default().with(&record);
        assert_eq!((tally.units.get("SHOE"), tally.version), (Some(&2), 1));
        assert!(tally.any_open());
        let back = tally.without_units_of(&record);
        assert!(back.units.is_empty());
        assert!(!back.any_open());
        assert!(!tally.settled(&record).any_open());
        assert_eq!(back.returns.len(), 1);
        let rejected = record
            .moved(
                ReturnStatus::Rejected,
                Actor::Merchant,
                Some("worn".into()),
                None,
                at,
            )
            .unwrap();
        assert_eq!(rejected.rejection_reason.as_deref(), Some("worn"));
    }

    #[test]
    fn ids_are_stable_per_key_and_differ_across_orders() {
        let m = MerchantId::parse("m", "m1").unwrap();
        let a = return_id(&m, &OrderId::parse("o", "1").unwrap(), "k1").unwrap();
        assert_eq!(
            a,
            return_id(&m, &OrderId::parse("o", "1").unwrap(), "k1").unwrap()
        );
        assert_ne!(
            a,
            return_id(&m, &OrderId::parse("o", "2").unwrap(), "k1").unwrap()
        );
        assert_eq!(a.as_str().len(), 17);
    }

    #[test]
    fn policy_validation_names_fields() {
        let bad = |p: ReturnPolicy| p.validate().unwrap_err().field;
        assert_eq!(
            bad(ReturnPolicy {
                window_days: 0,
                ..policy()
            }),
            "settings.returns.window_days"
        );
        assert_eq!(
            bad(ReturnPolicy {
                credit_bonus_percent: 101,
                ..policy()
            }),
            "settings.returns.credit_bonus_percent"
        );
        assert_eq!(
            bad(ReturnPolicy {
                resolutions: vec![],
                ..policy()
            }),
            "settings.returns.resolutions"
        );
        let mut r = policy();
        r.reasons = vec![ReturnReason {
            code: "Bad Code".into(),
            labels: BTreeMap::new(),
        }];
        assert_eq!(bad(r), "settings.returns.reasons[0].code");
        let mut s = policy();
        s.shipping.label_url = Some("javascript:alert(1)".into());
        assert_eq!(bad(s), "settings.returns.shipping.label_url");
        assert!(policy().validate().is_ok());
        assert_eq!(
            policy().reason("damaged").unwrap().label(Locale::De),
            "Beschädigt angekommen"
        );
    }
}
