//! Cross-site request forgery defences: a synchronizer token for forms, kept in a private cookie
//! of its own (so showing a form stores nothing on the server), and a check of the `Origin` and
//! `Sec-Fetch-Site` headers that every state-changing request must pass.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rocket::http::Method;
use rocket::request::{FromRequest, Outcome, Request};
use subtle::ConstantTimeEq;

use super::cookie::{self, Opened};
use super::{SessionError, guard_start};

/// Bytes of randomness in a token.
const TOKEN_BYTES: usize = 32;
/// The form field that carries the token.
pub const FIELD: &str = "csrf_token";

/// This browser's CSRF token: render [`value`](Self::value) into a hidden `csrf_token` field of
/// every form that changes state, and [`verify`](Self::verify) what the form sends back.
///
/// The token lives in a private cookie (encrypted and authenticated with the `secret_key`,
/// `HttpOnly`, `SameSite=Lax`), created the first time a page asks for it. Another site can
/// neither read it nor set it, so a forged form cannot carry it.
#[derive(Debug, Clone)]
pub struct CsrfToken {
    value: String,
}

impl CsrfToken {
    /// The token to put in the form.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The token to put in the form, owned.
    pub fn into_value(self) -> String {
        self.value
    }

    /// Checks a submitted token against this browser's, in constant time.
    ///
    /// # Errors
    ///
    /// [`SessionError::Csrf`] (403) when it is missing or differs.
    pub fn verify(&self, submitted: Option<&str>) -> Result<(), SessionError> {
        let matches = submitted
            .is_some_and(|submitted| bool::from(submitted.as_bytes().ct_eq(self.value.as_bytes())));
        if matches {
            Ok(())
        } else {
            Err(SessionError::Csrf)
        }
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for CsrfToken {
    type Error = SessionError;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let sessions = match guard_start(request) {
            Ok(sessions) => sessions,
            Err(failure) => return Outcome::Error(failure),
        };
        let config = sessions.config();
        let name = config.csrf_cookie_name.as_str();
        let cookies = request.cookies();
        let existing = match cookie::open(cookies, name, sessions.previous_keys()) {
            Opened::Current(cookie) => Some((cookie, false)),
            Opened::Previous(cookie) => Some((cookie, true)),
            Opened::Unreadable | Opened::Absent => None,
        }
        .filter(|(cookie, _)| is_token(cookie.value()));
        let (value, reseal) = match existing {
            Some((cookie, reseal)) => (cookie.value().to_owned(), reseal),
            None => (generate(), true),
        };
        if reseal {
            cookie::seal(cookies, name, value.clone(), config.cookie_secure, None);
        }
        Outcome::Success(CsrfToken { value })
    }
}

fn generate() -> String {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn is_token(value: &str) -> bool {
    URL_SAFE_NO_PAD
        .decode(value)
        .is_ok_and(|bytes| bytes.len() == TOKEN_BYTES)
}

/// Refuses a state-changing request (any method but GET, HEAD, OPTIONS and TRACE) that a browser
/// says came from another site: `Sec-Fetch-Site: cross-site` or `same-site`, or an `Origin`
/// (including `null`) whose host and port are not the `Host` the request was sent to. Requests
/// without these headers (older browsers, non-browser clients) pass: `SameSite=Lax` cookies and
/// the form token still cover them.
///
/// # Errors
///
/// [`SessionError::CrossSite`] (403).
pub fn refuse_cross_site(request: &Request<'_>) -> Result<(), SessionError> {
    if matches!(
        request.method(),
        Method::Get | Method::Head | Method::Options | Method::Trace
    ) {
        return Ok(());
    }
    let headers = request.headers();
    if let Some(site) = headers.get_one("Sec-Fetch-Site")
        && (site.eq_ignore_ascii_case("cross-site") || site.eq_ignore_ascii_case("same-site"))
    {
        return Err(SessionError::CrossSite);
    }
    let Some(origin) = headers.get_one("Origin") else {
        return Ok(());
    };
    let host = headers.get_one("Host").unwrap_or_default();
    if same_authority(origin, host) {
        Ok(())
    } else {
        Err(SessionError::CrossSite)
    }
}

/// Whether `origin` (`scheme://host[:port]`) names the same host and port as the `Host` header.
/// A missing port means the scheme's default on both sides.
fn same_authority(origin: &str, host: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        // `null` and anything malformed
        return false;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => "80",
        "https" => "443",
        _ => return false,
    };
    let normalize = |authority: &str| -> Option<(String, String)> {
        let authority = authority.trim().trim_end_matches('/');
        if authority.is_empty() || authority.contains(['/', '@', '?', '#']) {
            return None;
        }
        // An IPv6 literal keeps its colons inside brackets.
        let (host, port) = match authority.rfind(':') {
            Some(colon) if !authority[colon..].contains(']') => {
                (&authority[..colon], &authority[colon + 1..])
            }
            _ => (authority, default_port),
        };
        Some((host.to_ascii_lowercase(), port.to_owned()))
    };
    match (normalize(authority), normalize(host)) {
        (Some(origin), Some(host)) => origin == host,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_matches_its_own_host_only() {
        for (origin, host) in [
            ("http://127.0.0.1:8000", "127.0.0.1:8000"),
            ("https://example.com", "example.com"),
            ("https://example.com", "example.com:443"),
            ("http://EXAMPLE.com", "example.com:80"),
            ("http://[::1]:8000", "[::1]:8000"),
        ] {
            assert!(same_authority(origin, host), "{origin} vs {host}");
        }
        for (origin, host) in [
            ("http://evil.example", "example.com"),
            ("http://127.0.0.1:9000", "127.0.0.1:8000"),
            ("https://example.com", "example.com:80"),
            ("null", "example.com"),
            ("http://example.com@evil.example", "example.com"),
            ("ftp://example.com", "example.com"),
            ("http://example.com", ""),
        ] {
            assert!(!same_authority(origin, host), "{origin} vs {host}");
        }
    }

    #[test]
    fn tokens_compare_exactly() {
        let token = CsrfToken { value: generate() };
        assert!(token.verify(Some(&token.value.clone())).is_ok());
        assert!(token.verify(None).is_err());
        assert!(token.verify(Some("")).is_err());
        assert!(token.verify(Some(&generate())).is_err());
        assert!(is_token(&token.value));
        assert!(!is_token("short"));
    }
}
