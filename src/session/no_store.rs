//! Responses that depend on a session are never kept by a cache: a fairing marks them
//! `Cache-Control: no-store` and `Vary: Cookie`.

use rocket::fairing::{Fairing, Info, Kind};
use rocket::{Request, Response};

use super::guard::session_was_loaded;

/// Adds `Cache-Control: no-store` and `Vary: Cookie` to every response that used the
/// [`Session`](super::Session) or [`CsrfToken`](super::CsrfToken) guard (the CSRF guard loads
/// the session too), even when the only change was a throttled touch. Only these guards set or
/// clear latch's cookies, so this covers every response that does. A shared cache would
/// otherwise hand one visitor's page, or their `Set-Cookie`, to the next.
pub struct NoStore;

#[rocket::async_trait]
impl Fairing for NoStore {
    fn info(&self) -> Info {
        Info {
            name: "Session responses are not cached",
            kind: Kind::Response,
        }
    }

    async fn on_response<'r>(&self, request: &'r Request<'_>, response: &mut Response<'r>) {
        if !session_was_loaded(request) {
            return;
        }
        response.set_raw_header("Cache-Control", "no-store");
        response.adjoin_raw_header("Vary", "Cookie");
    }
}
