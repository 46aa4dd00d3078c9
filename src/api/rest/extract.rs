//! Extractors whose rejections are FastAPI-shaped errors with a reason: a body that is not JSON
//! (400), not declared as JSON (415), too large (413, over `api::MAX_BODY`), or JSON of the wrong
//! shape, with an unknown field or a value outside an enum (422, naming what is allowed); a query
//! string of the wrong shape (422).

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;

use super::ApiError;

/// A JSON request body. Body types use `deny_unknown_fields`, so a misspelt field is a 422
/// rather than silently ignored.
pub struct Body<T>(pub T);

impl<S, T> FromRequest<S> for Body<T>
where
    axum::Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Body(value)),
            Err(rejection) => Err(body_rejection(rejection)),
        }
    }
}

fn body_rejection(rejection: JsonRejection) -> ApiError {
    let status = rejection.status();
    let detail = match &rejection {
        JsonRejection::JsonDataError(_) => format!("invalid request body: {}", reason(&rejection)),
        JsonRejection::JsonSyntaxError(_) => {
            format!("the request body is not valid JSON: {}", reason(&rejection))
        }
        JsonRejection::MissingJsonContentType(_) => {
            "the request body must be JSON, sent with `Content-Type: application/json`".to_string()
        }
        _ if status == StatusCode::PAYLOAD_TOO_LARGE => format!(
            "the request body is larger than the {} KiB this API reads",
            crate::api::MAX_BODY / 1024
        ),
        _ => format!("cannot read the request body: {}", reason(&rejection)),
    };
    ApiError::new(status, detail)
}

/// axum's rejection text without its generic prefix ("Failed to deserialize ...: ").
fn reason(rejection: &JsonRejection) -> String {
    let text = rejection.body_text();
    match text.split_once(": ") {
        Some((prefix, rest)) if prefix.starts_with("Failed to") => rest.to_string(),
        _ => text,
    }
}

/// A query string.
pub struct Params<T>(pub T);

impl<S, T> FromRequestParts<S> for Params<T>
where
    axum::extract::Query<T>: FromRequestParts<S, Rejection = QueryRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Params(value)),
            Err(rejection) => {
                let text = rejection.body_text();
                let why = text
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&text);
                Err(ApiError::unprocessable(format!(
                    "invalid query parameter: {why}"
                )))
            }
        }
    }
}
