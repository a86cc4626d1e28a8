//! Cross-site request forgery defences: a synchronizer token for forms (derived from the session,
//! or kept in a private cookie of its own before there is one, so showing a form stores nothing
//! on the server), and a check of the `Origin` and `Sec-Fetch-Site` headers that every
//! state-changing request must pass.

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rocket::http::Method;
use rocket::request::{FromRequest, Outcome, Request};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::cookie::{self, Opened};
use super::{Session, SessionConfig, SessionError, SessionId};

/// Bytes of randomness in a cookie token.
const TOKEN_BYTES: usize = 32;
/// Sets the session-derived tokens apart from every other use of a session ID.
const DERIVATION_CONTEXT: &[u8] = b"latch csrf token v1\0";

/// This browser's CSRF token: render it into a hidden `csrf_token` field of every form that
/// changes state, and [`verify`](Self::verify) what the form sends back.
///
/// A visitor with a session gets a token derived from the session ID (SHA-256 of the ID under
/// a fixed context): nothing is stored or sent besides the page, it cannot be turned back into
/// the ID, and it changes when the ID rotates at login. A visitor without a session (a login
/// form) gets a random token kept in a private cookie of its own (`csrf_cookie_name`:
/// encrypted and authenticated with the `secret_key`, `HttpOnly`, `SameSite=Lax`, for the
/// browser session), created the first time a form asks for it; once the visitor has a
/// session, only the session's token is accepted. Either way another site can neither read nor
/// set the token, so a forged form cannot carry it, and showing a form stores nothing on the
/// server. Take the posted form as [`CsrfForm`](crate::CsrfForm) and the token is checked for
/// you.
///
/// ```no_run
/// use latch::{CsrfForm, CsrfToken};
/// use rocket::response::content::RawHtml;
/// use rocket::{FromForm, get, post};
///
/// #[get("/feedback")]
/// fn show(token: CsrfToken<'_>) -> RawHtml<String> {
///     // The token is URL-safe base64: nothing in it needs escaping.
///     RawHtml(format!(
///         r#"<form method="post" action="/feedback">
///              <input type="hidden" name="csrf_token" value="{}">
///              <textarea name="text"></textarea> <button>Send</button>
///            </form>"#,
///         token.value()
///     ))
/// }
///
/// #[derive(FromForm)]
/// struct Feedback {
///     text: String,
/// }
///
/// #[post("/feedback", data = "<form>")]
/// fn send(form: CsrfForm<Feedback>) -> String {
///     format!("thanks for {} characters", form.text.chars().count())
/// }
/// ```
pub struct CsrfToken<'r> {
    session: Session<'r>,
    /// The cookie token, once read or created during this request.
    cookie_token: OnceLock<Option<String>>,
}

impl CsrfToken<'_> {
    /// The token for the forms of a page that belongs to a session (a logout button), or
    /// `None` when the visitor has none. Costs one hash; sets no cookie.
    pub fn for_session(&self) -> Option<String> {
        self.session.current_id().map(|id| derive(&id))
    }

    /// The token for a form any visitor may submit (a login form): the session's, or else the
    /// cookie token, created (and its cookie set) if the browser has none yet.
    pub fn value(&self) -> String {
        if let Some(token) = self.for_session() {
            return token;
        }
        if let Some(token) = self.cookie_token() {
            return token;
        }
        let token = generate();
        let config = self.session.manager.config();
        cookie::seal(
            self.session.cookies,
            &config.csrf_cookie_name,
            token.clone(),
            config.cookie_secure,
            None,
        );
        token
    }

    /// Checks a submitted token against this browser's, in constant time: the session's token
    /// when the request has a session, and only then the cookie token. A cookie token is for
    /// visitors without a session; accepting it beside a session would let anyone who can
    /// plant cookies on the browser (a sibling subdomain, say) pair the victim's session with
    /// a cookie and token of their own.
    ///
    /// # Errors
    ///
    /// [`SessionError::Csrf`] (403) when it is missing or does not match.
    pub fn verify(&self, submitted: Option<&str>) -> Result<(), SessionError> {
        let Some(submitted) = submitted else {
            return Err(SessionError::Csrf);
        };
        let expected = match self.for_session() {
            Some(token) => Some(token),
            None => self.cookie_token(),
        };
        match expected {
            Some(token) if bool::from(submitted.as_bytes().ct_eq(token.as_bytes())) => Ok(()),
            _ => Err(SessionError::Csrf),
        }
    }

    /// The token in the browser's CSRF cookie, if it holds a valid one; a cookie sealed with a
    /// previous key is resealed with the current one.
    fn cookie_token(&self) -> Option<String> {
        self.cookie_token
            .get_or_init(|| {
                let manager = self.session.manager;
                let config = manager.config();
                let name = config.csrf_cookie_name.as_str();
                let (cookie, reseal) =
                    match cookie::open(self.session.cookies, name, manager.previous_keys()) {
                        Opened::Current(cookie) => (cookie, false),
                        Opened::Previous(cookie) => (cookie, true),
                        Opened::Unreadable | Opened::Absent => return None,
                    };
                let token = cookie.value().to_owned();
                if !is_token(&token) {
                    return None;
                }
                if reseal {
                    cookie::seal(
                        self.session.cookies,
                        name,
                        token.clone(),
                        config.cookie_secure,
                        None,
                    );
                }
                Some(token)
            })
            .clone()
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for CsrfToken<'r> {
    type Error = SessionError;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        // The session guard finds the managed state and refuses cross-site writes.
        let session = match request.guard::<Session<'r>>().await {
            Outcome::Success(session) => session,
            Outcome::Error(failure) => return Outcome::Error(failure),
            Outcome::Forward(status) => return Outcome::Forward(status),
        };
        Outcome::Success(CsrfToken {
            session,
            cookie_token: OnceLock::new(),
        })
    }
}

/// The token of the session with this ID.
fn derive(id: &SessionId) -> String {
    let mut hasher = Sha256::new();
    hasher.update(DERIVATION_CONTEXT);
    hasher.update(id.as_bytes());
    URL_SAFE_NO_PAD.encode(hasher.finalize())
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
/// says came from another site: an `Origin` (including `null`) whose host and port are neither
/// the `Host` the request was sent to nor one of `trusted_origins`, or, without a trusted
/// `Origin`, `Sec-Fetch-Site: cross-site` or `same-site`. Requests without these headers (older
/// browsers, non-browser clients) pass: `SameSite=Lax` cookies and the form token still cover
/// them.
///
/// # Errors
///
/// [`SessionError::CrossSite`] (403).
pub fn refuse_cross_site(
    request: &Request<'_>,
    config: &SessionConfig,
) -> Result<(), SessionError> {
    if matches!(
        request.method(),
        Method::Get | Method::Head | Method::Options | Method::Trace
    ) {
        return Ok(());
    }
    let headers = request.headers();
    let origin = headers.get_one("Origin");
    if let Some(origin) = origin
        && is_trusted(origin, &config.trusted_origins)
    {
        return Ok(());
    }
    if let Some(site) = headers.get_one("Sec-Fetch-Site")
        && (site.eq_ignore_ascii_case("cross-site") || site.eq_ignore_ascii_case("same-site"))
    {
        return Err(SessionError::CrossSite);
    }
    let Some(origin) = origin else {
        return Ok(());
    };
    let host = headers.get_one("Host").unwrap_or_default();
    if same_authority(origin, host) {
        Ok(())
    } else {
        Err(SessionError::CrossSite)
    }
}

/// Whether `origin` is exactly one of `trusted` (scheme, host and port; case-insensitive host).
fn is_trusted(origin: &str, trusted: &[String]) -> bool {
    if trusted.is_empty() {
        return false;
    }
    let Some(origin) = Origin::parse(origin) else {
        return false;
    };
    trusted
        .iter()
        .filter_map(|trusted| Origin::parse(trusted))
        .any(|trusted| trusted == origin)
}

/// An origin (`scheme://host[:port]`), normalised: lowercase scheme and host, the scheme's
/// default port written out.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Origin {
    scheme: String,
    host: String,
    port: String,
}

impl Origin {
    /// `http` and `https` origins only; `None` for `null`, a path, credentials and the like.
    pub(crate) fn parse(origin: &str) -> Option<Self> {
        let (scheme, authority) = origin.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let (host, port) = authority_of(authority, default_port(&scheme)?)?;
        Some(Self { scheme, host, port })
    }
}

fn default_port(scheme: &str) -> Option<&'static str> {
    match scheme {
        "http" => Some("80"),
        "https" => Some("443"),
        _ => None,
    }
}

/// `host[:port]` → lowercase host and port (`default_port` when absent).
fn authority_of(authority: &str, default_port: &str) -> Option<(String, String)> {
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
}

/// Whether `origin` (`scheme://host[:port]`) names the same host and port as the `Host` header.
/// A missing port means the scheme's default on both sides.
fn same_authority(origin: &str, host: &str) -> bool {
    let Some(origin) = Origin::parse(origin) else {
        // `null` and anything malformed
        return false;
    };
    let Some(default_port) = default_port(&origin.scheme) else {
        return false;
    };
    authority_of(host, default_port)
        .is_some_and(|(host, port)| host == origin.host && port == origin.port)
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
    fn only_exact_trusted_origins_are_trusted() {
        let trusted = vec![
            "https://App.example.com".to_owned(),
            "http://localhost:5173".to_owned(),
        ];
        for origin in [
            "https://app.example.com",
            "https://app.example.com:443",
            "http://localhost:5173",
        ] {
            assert!(is_trusted(origin, &trusted), "{origin}");
        }
        for origin in [
            "http://app.example.com",
            "https://evil.app.example.com",
            "https://app.example.com.evil.example",
            "http://localhost:5174",
            "null",
            "https://app.example.com@evil.example",
        ] {
            assert!(!is_trusted(origin, &trusted), "{origin}");
        }
        assert!(!is_trusted("https://app.example.com", &[]));
    }

    #[test]
    fn tokens_are_well_formed_and_derived_ones_differ_per_session() {
        let a = SessionId::generate();
        let b = SessionId::generate();
        assert!(is_token(&generate()));
        assert_ne!(generate(), generate());
        assert_eq!(derive(&a), derive(&a));
        assert_ne!(derive(&a), derive(&b));
        assert!(!derive(&a).contains(&a.encode()));
        assert!(!is_token("short"));
    }
}
