//! Security headers on every response: a Content-Security-Policy that allows no inline script
//! (the only script is one file of this app's, which the pages do without) and no framing, a
//! same-origin referrer policy, and `nosniff`.
//!
//! These replace Rocket's default shield (which sends `X-Content-Type-Options`,
//! `X-Frame-Options` and an obsolete `Permissions-Policy`): `frame-ancestors 'none'` does what
//! `X-Frame-Options` did, and every header costs each response a little.

use rocket::fairing::AdHoc;
use rocket::shield::Shield;

/// Scripts and styles only from the app's own files: `'self'` allows no inline script, no event
/// handler attribute and no `eval`, so text that slipped past escaping still could not run, and
/// with `nosniff` no other response of this origin (the JSON API's, say) can pass for a script.
/// No frames; forms post to this origin only.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

/// Adds the headers above to every response.
pub fn fairing() -> AdHoc {
    AdHoc::on_response("Security headers", |_, response| {
        Box::pin(async move {
            response.set_raw_header("Content-Security-Policy", CONTENT_SECURITY_POLICY);
            response.set_raw_header("Referrer-Policy", "same-origin");
            response.set_raw_header("X-Content-Type-Options", "nosniff");
        })
    })
}

/// A shield with no policies of its own, which replaces Rocket's default one ([`fairing`]
/// sends what latch needs).
pub fn no_default_shield() -> Shield {
    Shield::new()
}
