//! Responses that depend on a session are never kept by a cache: a fairing marks them
//! `Cache-Control: no-store` and `Vary: Cookie`.

use rocket::fairing::{Fairing, Info, Kind};
use rocket::{Request, Response};

use super::Sessions;
use super::guard::session_was_loaded;

/// Adds `Cache-Control: no-store` and `Vary: Cookie` to every response that used the
/// [`Session`](super::Session) or [`CsrfToken`](super::CsrfToken) guard, or that sets or
/// clears one of their cookies, even when the only change was a throttled touch. A shared cache
/// would otherwise hand one visitor's page, or their `Set-Cookie`, to the next.
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
        // The CSRF guard loads the session too.
        if !session_was_loaded(request) && !sets_a_latch_cookie(request, response) {
            return;
        }
        response.set_raw_header("Cache-Control", "no-store");
        response.adjoin_raw_header("Vary", "Cookie");
    }
}

fn sets_a_latch_cookie(request: &Request<'_>, response: &Response<'_>) -> bool {
    let Some(sessions) = request.rocket().state::<Sessions>() else {
        return false;
    };
    let config = sessions.config();
    response.headers().get("Set-Cookie").any(|header| {
        let name = header.split('=').next().unwrap_or_default().trim();
        name == config.cookie_name || name == config.csrf_cookie_name
    })
}
