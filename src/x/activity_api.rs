//! The X Activity API calls (ACTIVITY.md §3, §4): the app Bearer from client_credentials, the
//! subscriptions, and opening the stream. Which token each call takes follows §3.1: creating a
//! subscription to a private event takes the watched user's own token; listing, deleting and
//! the stream take the app Bearer. Every call goes to `api_base`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;

use crate::domain::Secret;

use super::activity::{Subscription, parse_subscription_created, parse_subscription_list};
use super::{Endpoint, XClient, XError, errors, network_error, parse_rate_limit};

/// How long the stream's response headers may take (X may hold them until its first heartbeat).
const STREAM_HEADERS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The most subscription pages perch follows in one listing (1 000 a page: far beyond 1 500).
const MAX_LIST_PAGES: usize = 10;

impl XClient {
    /// Mints the app Bearer with client_credentials at `{api_base}/oauth2/token` (not
    /// `/2/oauth2/token`), HTTP Basic with the consumer API key and secret (§3.1).
    pub async fn mint_app_token(
        &self,
        api_key: &Secret,
        api_secret: &Secret,
    ) -> Result<Secret, XError> {
        let endpoint = Endpoint::AppToken;
        let basic = STANDARD.encode(format!("{}:{}", api_key.expose(), api_secret.expose()));
        let response = self
            .http
            .post(format!("{}/oauth2/token", self.api_base))
            .header(reqwest::header::AUTHORIZATION, format!("Basic {basic}"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .map_err(|e| network_error(endpoint, &e))?;
        let status = response.status().as_u16();
        let rate_limit = parse_rate_limit(response.headers());
        let body = response
            .bytes()
            .await
            .map_err(|e| network_error(endpoint, &e))?;
        if !(200..300).contains(&status) {
            return Err(errors::classify(status, rate_limit, &body));
        }
        let value: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| XError::Malformed {
                detail: format!("oauth2/token: {e}"),
                transaction_id: None,
            })?;
        value
            .get("access_token")
            .and_then(serde_json::Value::as_str)
            .filter(|t| !t.trim().is_empty())
            .map(Secret::new)
            .ok_or_else(|| XError::Malformed {
                detail: "oauth2/token: no access_token in the answer".into(),
                transaction_id: None,
            })
    }

    /// Creates one subscription with the watched user's token (§3.2). No `webhook_id`: the
    /// stream may carry only subscriptions without one (§6).
    pub async fn create_subscription(
        &self,
        user_token: &Secret,
        event_type: &str,
        user_id: &str,
        tag: &str,
    ) -> Result<Subscription, XError> {
        let raw = self
            .send(
                Endpoint::Subscriptions,
                Method::POST,
                "/2/activity/subscriptions",
                user_token,
                &[],
                Some(serde_json::json!({
                    "event_type": event_type,
                    "filter": {"user_id": user_id},
                    "tag": tag,
                })),
            )
            .await?;
        parse_subscription_created(&raw.body).map_err(|detail| XError::Malformed {
            detail: format!("activity/subscriptions: {detail}"),
            transaction_id: raw.transaction_id,
        })
    }

    /// Every subscription of the app (app Bearer), following `meta.next_token` (§3.3).
    pub async fn list_subscriptions(&self, app: &Secret) -> Result<Vec<Subscription>, XError> {
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            let mut query = vec![("max_results", "1000".to_string())];
            if let Some(t) = &token {
                query.push(("pagination_token", t.clone()));
            }
            let raw = self
                .send(
                    Endpoint::Subscriptions,
                    Method::GET,
                    "/2/activity/subscriptions",
                    app,
                    &query,
                    None,
                )
                .await?;
            let page = parse_subscription_list(&raw.body).map_err(|detail| XError::Malformed {
                detail: format!("activity/subscriptions: {detail}"),
                transaction_id: raw.transaction_id.clone(),
            })?;
            all.extend(page);
            let next = serde_json::from_slice::<serde_json::Value>(&raw.body)
                .ok()
                .and_then(|v| {
                    v.pointer("/meta/next_token")
                        .and_then(serde_json::Value::as_str)
                        .map(str::to_string)
                });
            match next {
                Some(next) if Some(&next) != token.as_ref() => token = Some(next),
                _ => return Ok(all),
            }
        }
        Ok(all)
    }

    /// Deletes one subscription (app Bearer, §3.5).
    pub async fn delete_subscription(&self, app: &Secret, id: &str) -> Result<(), XError> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(XError::InvalidRequest {
                status: 0,
                detail: format!("not a subscription id: {id:?}"),
            });
        }
        self.send(
            Endpoint::Subscriptions,
            Method::DELETE,
            &format!("/2/activity/subscriptions/{id}"),
            app,
            &[],
            None,
        )
        .await
        .map(|_| ())
    }

    /// Opens `GET /2/activity/stream` with the app Bearer and returns the response once its
    /// status is 2xx; the body is read by the caller, chunk by chunk. Never sends
    /// `backfill_minutes`, `start_time` or `end_time`: self-serve apps get 400 for them (§4.1).
    pub async fn open_activity_stream(&self, app: &Secret) -> Result<reqwest::Response, XError> {
        let endpoint = Endpoint::ActivityStream;
        // X may send the headers only with the first heartbeat, ~20 s in (ACTIVITY.md §4.3): no
        // short time-to-headers timeout, but a bound all the same.
        let response = tokio::time::timeout(
            STREAM_HEADERS_TIMEOUT,
            self.stream_http
                .get(format!("{}/2/activity/stream", self.api_base))
                .bearer_auth(app.expose())
                .send(),
        )
        .await
        .map_err(|_| {
            XError::Network(format!(
                "{} timed out: no answer in {} s",
                endpoint.name(),
                STREAM_HEADERS_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|e| network_error(endpoint, &e))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(response);
        }
        let rate_limit = parse_rate_limit(response.headers());
        // An error body is short; bound the wait for it all the same.
        let body = tokio::time::timeout(std::time::Duration::from_secs(10), response.bytes())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        Err(errors::classify(status, rate_limit, &body))
    }
}
