//! The app's errors, and the one place they become HTTP: an HTML error page for the pages, a JSON
//! `{"error": …}` body for the API. Internal causes go to the log, never to the response.

use rocket::http::Status;
use rocket::request::Request;
use rocket::response::{self, Responder};
use rocket::serde::json::{Json, json};
use rocket::{Catcher, catch, catchers};
use serde_json::json as context;

use crate::templates::Page;

use crate::name::NameError;
use latch::SessionError;

/// Everything a handler can fail with, named by what happened.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request body is not what the endpoint takes (the message says how).
    #[error("{0}")]
    BadRequest(String),
    /// The request body is larger than the configured limit.
    #[error("the request body is too large")]
    TooLarge,
    /// The request body is not of a type the endpoint takes.
    #[error("send the body as JSON, with `Content-Type: application/json`")]
    UnsupportedMediaType,
    #[error("invalid name: {0}")]
    InvalidName(#[from] NameError),
    #[error(transparent)]
    Session(#[from] SessionError),
    /// Every password-hashing slot stayed busy: the client should retry shortly.
    #[error("The server is busy checking other passwords. Please try again in a moment.")]
    Busy,
    /// A failure of ours that is not the session layer's (logged, never shown).
    #[error("{0}")]
    Internal(String),
}

/// The seconds a [`AppError::Busy`] answer asks the client to wait.
const BUSY_RETRY_AFTER: &str = "1";

impl From<crate::accounts::password::Busy> for AppError {
    fn from(_: crate::accounts::password::Busy) -> Self {
        Self::Busy
    }
}

impl AppError {
    pub fn status(&self) -> Status {
        match self {
            Self::BadRequest(_) => Status::BadRequest,
            Self::TooLarge => Status::PayloadTooLarge,
            Self::UnsupportedMediaType => Status::UnsupportedMediaType,
            Self::InvalidName(_) => Status::UnprocessableEntity,
            Self::Session(error) => error.status(),
            Self::Busy => Status::ServiceUnavailable,
            Self::Internal(_) => Status::InternalServerError,
        }
    }

    /// What the user is told: the error itself for their own mistakes, and only the status's
    /// generic message for ours (logged here with the full chain of causes).
    fn public_message(&self) -> String {
        let status = self.status();
        if let Self::Busy = self {
            log::warn!("503: {self}");
            self.to_string()
        } else if status.class().is_server_error() {
            log::error!("{status}: {}", error_chain(self));
            status_message(status).to_owned()
        } else if let Self::Session(SessionError::Ended) = self {
            status_message(status).to_owned()
        } else {
            self.to_string()
        }
    }
}

impl<'r> Responder<'r, 'static> for AppError {
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'static> {
        let status = self.status();
        let mut response = error_page(status, &self.public_message()).respond_to(request)?;
        if let Self::Busy = self {
            response.set_raw_header("Retry-After", BUSY_RETRY_AFTER);
        }
        Ok(response)
    }
}

/// A database error of the app's own tables gets the status latch gives the same error on its
/// own (503 when the database cannot be reached, 500 otherwise).
impl From<sqlx::Error> for AppError {
    fn from(error: sqlx::Error) -> Self {
        Self::Session(SessionError::from(error))
    }
}

/// An [`AppError`] answered as JSON, for the API.
#[derive(Debug)]
pub struct ApiError(pub AppError);

impl<E: Into<AppError>> From<E> for ApiError {
    fn from(error: E) -> Self {
        Self(error.into())
    }
}

impl<'r> Responder<'r, 'static> for ApiError {
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'static> {
        let status = self.0.status();
        (status, Json(json!({ "error": self.0.public_message() }))).respond_to(request)
    }
}

/// An error and all its sources on one line (`outer: inner: root`), for logs and for the one
/// line a failed launch prints.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Many errors already end with their source's text (sqlx's do): said once.
        if !line.ends_with(&cause_text) {
            line.push_str(": ");
            line.push_str(&cause_text);
        }
        source = cause.source();
    }
    line
}

/// What each error status means, in words for the person who got it.
pub fn status_message(status: Status) -> &'static str {
    match status.code {
        400 => "The request could not be understood.",
        403 => {
            "This request was refused: it came from another site, or its form was out of \
                date. Reload the page and try again."
        }
        404 => "There is nothing at this address.",
        409 => "Your session ended while this request was using it. Please try again.",
        413 => "That request is too large.",
        415 => "The request body is not of a type this address takes.",
        429 => "Too many attempts. Please wait a moment and try again.",
        422 => "The request was understood, but its content is not valid.",
        503 => "The session store is unavailable right now. Please try again in a moment.",
        500..=599 => "Something went wrong on our side.",
        _ => "The request could not be handled.",
    }
}

fn error_page(status: Status, message: &str) -> (Status, Page) {
    let page = Page::render(
        "error",
        context!({ "code": status.code, "reason": status.reason_lossy(), "message": message }),
    );
    (status, page)
}

#[catch(default)]
fn page_catcher(status: Status, _: &Request<'_>) -> (Status, Page) {
    error_page(status, status_message(status))
}

#[catch(default)]
fn json_catcher(status: Status, _: &Request<'_>) -> (Status, Json<serde_json::Value>) {
    (status, Json(json!({ "error": status_message(status) })))
}

/// Error pages for everything the pages answer.
pub fn page_catchers() -> Vec<Catcher> {
    catchers![page_catcher]
}

/// JSON errors for everything under the API.
pub fn json_catchers() -> Vec<Catcher> {
    catchers![json_catcher]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error whose message ends with its source's, as sqlx's do.
    #[derive(Debug, thiserror::Error)]
    #[error("error with configuration: {0}")]
    struct Wrapping(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("the database URL is not valid")]
    struct Outer(#[source] Wrapping);

    #[test]
    fn a_cause_already_in_the_line_is_said_once() {
        let error = Outer(Wrapping(std::io::Error::other("bad port")));

        assert_eq!(
            error_chain(&error),
            "the database URL is not valid: error with configuration: bad port"
        );
    }
}
