//! What can go wrong in the session layer, and the HTTP status each outcome deserves.

use std::sync::Arc;

use rocket::http::Status;
use rocket::request::Request;
use rocket::response::{self, Responder};

use crate::StoreError;

/// A session operation that could not be completed. Store errors keep their source (for the log)
/// but say nothing about it in `Display`, so nothing internal reaches a page.
///
/// It is a responder (its [`status`](Self::status), logging server-side failures), so a
/// handler can return it as is; or map it into the app's own error type:
///
/// ```no_run
/// use latch::{Key, Session, SessionError};
/// use rocket::http::Status;
/// use rocket::post;
///
/// const VIEWS: Key<u64> = Key::new("views");
///
/// #[derive(rocket::Responder)]
/// enum AppError {
///     #[response(status = 503)]
///     Busy(&'static str),
///     Other(Status),
/// }
///
/// impl From<SessionError> for AppError {
///     fn from(error: SessionError) -> Self {
///         match error.status() {
///             Status::ServiceUnavailable => Self::Busy("try again in a moment"),
///             status => Self::Other(status),
///         }
///     }
/// }
///
/// #[post("/count")]
/// async fn count(session: Session<'_>) -> Result<String, AppError> {
///     let views = session.update(&VIEWS, |views| views.unwrap_or(0) + 1).await?;
///     Ok(views.to_string())
/// }
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The store could not be reached or is too busy; retrying later may succeed.
    #[error("the session store is unavailable")]
    Unavailable(#[source] StoreError),
    /// The store failed in a way retrying will not fix.
    #[error("the session store failed")]
    Store(#[source] StoreError),
    /// The stored data, or a value read from it, is not what the code expects.
    #[error("session data for `{key}` could not be (de)serialized")]
    Data {
        /// The key whose value did not fit (`*` for the whole object).
        key: String,
        /// What serde said.
        #[source]
        source: Arc<serde_json::Error>,
    },
    /// The session was destroyed or expired while this request was changing it. The change was
    /// not written, so the ended session stays ended.
    #[error("the session ended while this request was using it")]
    Ended,
    /// The app uses the `Session` guard without managing `SessionManager`.
    #[error("the session layer is not configured")]
    NotConfigured,
    /// Other application instances kept changing the session faster than this one could retry.
    #[error("the session is being changed by too many requests at once")]
    Contended,
    /// The change would make the session's data larger than `session.max_data_bytes`; nothing
    /// was stored.
    #[error("the session's data would grow past {limit} bytes")]
    TooLarge {
        /// `session.max_data_bytes`.
        limit: usize,
    },
    /// A state-changing request came from another site (`Origin` or `Sec-Fetch-Site`).
    #[error("cross-site requests may not change anything here")]
    CrossSite,
    /// The operation needs a signed-in session, and this one is not.
    #[error("this needs a signed-in session")]
    NotSignedIn,
    /// A user id given to [`SignIn`](crate::SignIn) is empty or longer than
    /// [`MAX_USER_ID`](crate::user::MAX_USER_ID) bytes.
    #[error("a user id must be 1 to 256 bytes long")]
    InvalidUserId,
    /// Signing in, listing a user's devices or revoking them needs a store with a per-user
    /// index ([`UserIndex`](crate::UserIndex)), and this one has none.
    #[error("this session store keeps no per-user index, which signing in needs")]
    NoUserIndex,
    /// A form's CSRF token is missing or is not this browser's.
    #[error("the form's security token is missing or out of date; reload the page and try again")]
    Csrf,
}

impl SessionError {
    /// The HTTP status a request that hit this error should get.
    pub fn status(&self) -> Status {
        match self {
            Self::Unavailable(_) | Self::Contended => Status::ServiceUnavailable,
            Self::Ended => Status::Conflict,
            Self::TooLarge { .. } => Status::PayloadTooLarge,
            Self::CrossSite | Self::Csrf => Status::Forbidden,
            Self::NotSignedIn => Status::Unauthorized,
            Self::Store(_)
            | Self::Data { .. }
            | Self::NotConfigured
            | Self::InvalidUserId
            | Self::NoUserIndex => Status::InternalServerError,
        }
    }

    pub(crate) fn data(key: &str, source: serde_json::Error) -> Self {
        Self::Data {
            key: key.to_owned(),
            source: Arc::new(source),
        }
    }
}

impl From<StoreError> for SessionError {
    fn from(error: StoreError) -> Self {
        if error.is_unavailable() {
            Self::Unavailable(error)
        } else {
            Self::Store(error)
        }
    }
}

impl From<sqlx::Error> for SessionError {
    fn from(error: sqlx::Error) -> Self {
        StoreError::from(error).into()
    }
}

/// Forwards to the app's catcher for [`status`](SessionError::status), logging server-side
/// failures with their causes (never shown to the client).
impl<'r> Responder<'r, 'static> for SessionError {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        let status = self.status();
        if status.code >= 500 {
            log::error!("session error: {}", error_chain(&self));
        }
        Err(status)
    }
}

/// An error and all its sources on one line (`outer: inner: root`), for logs.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
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
