//! `SignedInUser`: a request guard for a visitor signed in to an account, so the handlers of
//! the accounts step never ask the session who it belongs to themselves.

use std::ops::Deref;

use latch::{Session, SessionError, SignedIn};
use rocket::http::Status;
use rocket::outcome::try_outcome;
use rocket::request::{FromRequest, Outcome, Request};

/// The account this request's session is signed in to, from latch's [`Session`] guard (loaded
/// once per request, however many guards ask).
///
/// A visitor who is not signed in is forwarded (401), as Rocket's own examples do it: a route
/// of a higher rank at the same path says what such a visitor gets (a redirect to the sign-in
/// page, here). A session that cannot be read fails with its error's status instead, so a
/// store outage is a 503, never a trip to the sign-in page.
#[derive(Debug, Clone)]
pub struct SignedInUser(SignedIn);

impl Deref for SignedInUser {
    type Target = SignedIn;

    fn deref(&self) -> &SignedIn {
        &self.0
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for SignedInUser {
    type Error = SessionError;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let session = try_outcome!(request.guard::<Session<'r>>().await);
        match session.user().await {
            Ok(Some(user)) => Outcome::Success(Self(user)),
            Ok(None) => Outcome::Forward(Status::Unauthorized),
            Err(error) => {
                // The catcher's page says only the status: the cause goes to the log here.
                log::error!("who is signed in: {}", crate::error::error_chain(&error));
                Outcome::Error((error.status(), error))
            }
        }
    }
}
