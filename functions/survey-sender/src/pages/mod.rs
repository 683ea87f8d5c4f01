//! The customer's side of the loop: the one-click score page, the answer, and unsubscribe.
//!
//! Every link carries a signed, expiring token naming the merchant, the purpose and the subject;
//! the page resolves everything from the token and checks it against what is stored, so a token for
//! one merchant, customer or order is useless for another. Opening a score link (GET) records
//! nothing: mail filters that prefetch every link cannot vote. Only the form's POST records.

use crate::{Links, PREFERENCES, SURVEY, UNSUBSCRIBE, compose};
use aftercare::adapters::store::orders::OrderRecord;
use aftercare::app::App;
use aftercare::domain::followup::FollowUpKind;
use aftercare::domain::survey::Band;
use aftercare::domain::{CustomerId, Locale, Merchant, MerchantId, OrderId};
use aftercare::http;
use aftercare::ports::MerchantDirectory as _;
use aftercare::ports::feedback::FeedbackBook as _;
use aftercare::token::{Claims, TokenError};
use aftercare::usecases::feedback::{AnswerError, AnswerForm, SurveyAnswers};
use aftercare::usecases::send::Deadline;
use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use serde_json::json;
use std::sync::Arc;

mod contact;

pub(crate) use contact::*;

/// Why a page cannot be shown.
enum PageError {
    Invalid,
    Expired,
    NotFound,
    BadRequest,
    Unavailable,
}

impl PageError {
    fn status(&self) -> u16 {
        match self {
            PageError::Invalid | PageError::BadRequest => 400,
            PageError::Expired => 410,
            PageError::NotFound => 404,
            PageError::Unavailable => 503,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            PageError::Expired => "expired",
            PageError::NotFound => "not_found",
            _ => "invalid",
        }
    }
}

impl From<TokenError> for PageError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Expired => PageError::Expired,
            _ => PageError::Invalid,
        }
    }
}

impl From<AnswerError> for PageError {
    fn from(e: AnswerError) -> Self {
        match e {
            AnswerError::Invalid(_) => PageError::BadRequest,
            AnswerError::Store(e) => e.into(),
        }
    }
}

impl From<aftercare::adapters::store::StoreError> for PageError {
    fn from(e: aftercare::adapters::store::StoreError) -> Self {
        tracing::error!(error = %e, "store failure behind a page");
        PageError::Unavailable
    }
}

/// A page request that failed: why, and the merchant when the token got that far (so the error
/// page wears its look).
struct Failure {
    merchant: Option<Arc<Merchant>>,
    error: PageError,
}

impl From<PageError> for Failure {
    fn from(error: PageError) -> Self {
        Self {
            merchant: None,
            error,
        }
    }
}

type PageResult = Result<ApiGatewayV2httpResponse, Failure>;

/// A verified link: its claims and the merchant they name.
struct Link {
    claims: Claims,
    merchant: Arc<Merchant>,
}

impl Link {
    /// A failure after the token checked out, shown in the merchant's look.
    fn fail(&self, error: impl Into<PageError>) -> Failure {
        Failure {
            merchant: Some(Arc::clone(&self.merchant)),
            error: error.into(),
        }
    }
}

/// The response for `result`: the page, or the error page for its failure.
fn respond(app: &App, rid: &str, result: PageResult) -> ApiGatewayV2httpResponse {
    result.unwrap_or_else(|f| error_page(app, f.merchant.as_deref(), &f.error, rid))
}

/// A page that could not be shown, in the merchant's look when we know the merchant.
fn error_page(
    app: &App,
    merchant: Option<&Merchant>,
    err: &PageError,
    rid: &str,
) -> ApiGatewayV2httpResponse {
    http::error_page(&app.renderer, merchant, err.status(), err.reason(), rid)
}

/// Verifies `token` for `purpose` and finds the merchant it names.
async fn verify_link(
    app: &App,
    links: &Links,
    token: &str,
    purpose: &str,
) -> Result<Link, Failure> {
    let claims = links
        .verify(token, purpose, app.clock.now())
        .map_err(PageError::from)?;
    let merchant_id =
        MerchantId::parse("merchant", &claims.merchant).map_err(|_| PageError::Invalid)?;
    let merchant = match app.merchants.merchant(&merchant_id).await {
        Ok(Some(m)) => m,
        Ok(None) => return Err(PageError::NotFound.into()),
        Err(_) => return Err(PageError::Unavailable.into()),
    };
    tracing::Span::current().record("merchant_id", merchant.id.as_str());
    Ok(Link { claims, merchant })
}

/// The order a survey link is about, checked against the stored order's customer.
async fn survey_order(app: &App, link: &Link) -> Result<OrderRecord, Failure> {
    let (customer, order) = link
        .claims
        .subject
        .split_once('/')
        .ok_or_else(|| link.fail(PageError::Invalid))?;
    let customer =
        CustomerId::parse("customer", customer).map_err(|_| link.fail(PageError::Invalid))?;
    let order_id = OrderId::parse("order", order).map_err(|_| link.fail(PageError::Invalid))?;
    let order = app
        .store
        .get_order(&link.merchant.id, &order_id)
        .await
        .map_err(|e| link.fail(e))?
        .filter(|o| o.order.customer.id == customer)
        .ok_or_else(|| link.fail(PageError::NotFound))?;
    Ok(order)
}

fn locale_of(order: &OrderRecord, merchant: &Merchant) -> Locale {
    order.order.customer.locale_or(merchant.default_locale)
}

fn page(
    app: &App,
    merchant: &Merchant,
    locale: Locale,
    name: &str,
    title: &str,
    data: &serde_json::Value,
    rid: &str,
) -> ApiGatewayV2httpResponse {
    match app
        .renderer
        .render_page(name, title, locale, merchant, data)
    {
        Ok(html) => http::html_response(200, html, rid),
        Err(e) => {
            tracing::error!(error = %e, page = name, "page failed to render");
            http::html_response(
                500,
                "<!DOCTYPE html><title>Error</title><h1>Something went wrong</h1>".into(),
                rid,
            )
        }
    }
}

/// GET: the score page with the clicked score selected. Records nothing.
pub async fn survey_page(
    app: &App,
    links: &Links,
    token: &str,
    rid: &str,
) -> ApiGatewayV2httpResponse {
    let result = async {
        let link = verify_link(app, links, token, SURVEY).await?;
        let order = survey_order(app, &link).await?;
        let merchant = &link.merchant;
        let earlier = app
            .store
            .feedback(&merchant.id, &order.order.id)
            .await
            .map_err(|e| link.fail(e))?;
        let scale = merchant.settings.survey.scale;
        let selected = link
            .claims
            .value
            .as_deref()
            .and_then(|v| scale.score("score", v).ok())
            .or(earlier.as_ref().map(|f| f.score));
        let data = json!({
            "scale": scale.as_str(),
            "scores": scale.scores().collect::<Vec<_>>(),
            "selected": selected,
            "comment": earlier.as_ref().and_then(|f| f.comment.clone()),
            "action_url": format!("{}/v1/survey/{token}", links.base()),
            "order": {"number": order.order.id},
            "answered": earlier.is_some(),
        });
        let locale = locale_of(&order, merchant);
        Ok(page(
            app,
            merchant,
            locale,
            "survey",
            "page.survey.title",
            &data,
            rid,
        ))
    };
    respond(app, rid, result.await)
}

/// POST: records the answer (a later one replaces the earlier), then closes the loop.
pub async fn survey_answer(
    app: &App,
    links: &Links,
    req: &ApiGatewayV2httpRequest,
    token: &str,
    rid: &str,
    deadline: Deadline,
) -> ApiGatewayV2httpResponse {
    let result = async {
        let link = verify_link(app, links, token, SURVEY).await?;
        let order = survey_order(app, &link).await?;
        let merchant = &link.merchant;
        let body = http::body_bytes(req).map_err(|_| link.fail(PageError::BadRequest))?;
        let form = http::form_fields(&body);
        let answers = SurveyAnswers {
            book: &app.store,
            courier: app.courier(),
            retention: app.retention(),
        };
        let form = AnswerForm {
            score: form.get("score").map(String::as_str),
            comment: form.get("comment").map(String::as_str),
        };
        let answered = answers
            .answer(
                merchant,
                &order.order,
                form,
                deadline,
                |m, answer, reference| compose::detractor_alert(app, m, answer, reference),
            )
            .await
            .map_err(|e| link.fail(e))?;
        let scale = merchant.settings.survey.scale;
        let score = answered.record.score;
        let band = scale.band(score);
        let data = json!({
            "score": score,
            "max": scale.max(),
            "detractor": band == Band::Detractor,
            "promoter": band == Band::Promoter,
        });
        let locale = locale_of(&order, merchant);
        Ok(page(
            app,
            merchant,
            locale,
            "survey_thanks",
            "page.survey_thanks.title",
            &data,
            rid,
        ))
    };
    respond(app, rid, result.await)
}
