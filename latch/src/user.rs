//! Sessions that know their user: what a signed-in session records about its sign-in, the
//! opaque handles that name sessions in a user's device list, and the client details captured
//! at sign-in (truncated, for privacy).

use std::fmt;
use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rocket::request::{FromRequest, Outcome, Request};

/// Bytes of randomness in a [`Handle`].
const HANDLE_BYTES: usize = 16;
/// Longest `User-Agent` kept, in characters: enough to tell browsers apart, bounded for storage.
pub const MAX_USER_AGENT: usize = 256;
/// Longest user id accepted, in bytes.
pub const MAX_USER_ID: usize = 256;

/// An opaque, random name for one signed-in session, for listing and revoking it.
///
/// It is drawn from the CSPRNG at sign-in and stored beside the session, so it says nothing
/// about the session ID and cannot be turned into one: showing it to the user (in a form that
/// signs that device out) gives nobody the session. Revoking by handle only ever touches
/// sessions of the user asking.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Handle(pub(crate) [u8; HANDLE_BYTES]);

impl Handle {
    /// A fresh handle from the CSPRNG.
    pub fn generate() -> Self {
        let mut bytes = [0u8; HANDLE_BYTES];
        rand::fill(&mut bytes);
        Self(bytes)
    }

    /// The form shown to users and posted back: 22 URL-safe base64 characters.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// Parses what [`encode`](Self::encode) made; anything else is `None`.
    pub fn parse(encoded: &str) -> Option<Self> {
        if encoded.len() != 22 {
            return None;
        }
        let mut bytes = [0u8; HANDLE_BYTES];
        match URL_SAFE_NO_PAD.decode_slice(encoded, &mut bytes) {
            Ok(HANDLE_BYTES) => Some(Self(bytes)),
            _ => None,
        }
    }

    /// The stored bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// From stored bytes, if they have a handle's length.
    pub(crate) fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; HANDLE_BYTES]>::try_from(bytes).ok().map(Self)
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Handle({})", self.encode())
    }
}

/// Who a session is signed in as, and the sign-in's details, as stored with the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    /// The app's id for the user (its primary key, say).
    pub user_id: String,
    /// This session's name in the user's device list.
    pub handle: Handle,
    /// When it signed in.
    pub signed_in_at: time::OffsetDateTime,
    /// The client at sign-in, as [`ClientInfo`] captured it.
    pub client: ClientInfo,
}

/// What the client told about itself at sign-in: its `User-Agent` (truncated to
/// [`MAX_USER_AGENT`] characters) and its address truncated to its /24 (IPv4) or /48 (IPv6)
/// network, so a stored session shows roughly where it is without pinpointing anyone.
///
/// As a request guard it never fails. The address is Rocket's `client_ip()`: the socket's peer
/// unless Rocket's `ip_header` setting names a header to trust. Rocket trusts `X-Real-IP` by
/// default, which any client can forge: set `ip_header = false` unless a proxy you run sets it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// The `User-Agent` header, truncated.
    pub user_agent: Option<String>,
    /// The client's network, e.g. `203.0.113.0/24`.
    pub address: Option<String>,
}

impl ClientInfo {
    /// The client described by `user_agent` and `ip`, truncated as stored.
    pub fn new(user_agent: Option<&str>, ip: Option<IpAddr>) -> Self {
        Self {
            user_agent: user_agent
                .map(|agent| agent.chars().take(MAX_USER_AGENT).collect::<String>())
                .filter(|agent| !agent.is_empty()),
            address: ip.map(network),
        }
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for ClientInfo {
    type Error = std::convert::Infallible;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        Outcome::Success(Self::new(
            request.headers().get_one("User-Agent"),
            request.client_ip(),
        ))
    }
}

/// `ip`'s /24 (IPv4) or /48 (IPv6) network, in CIDR form. An IPv4 address mapped into IPv6 is
/// treated as IPv4.
fn network(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => {
            let [a, b, c, ..] = v6.segments();
            format!("{a:x}:{b:x}:{c:x}::/48")
        }
    }
}

/// How a session signs in: the user, and what becomes of the data it had before.
///
/// ```no_run
/// use latch::{ClientInfo, Session, SessionError, SignIn};
/// use rocket::post;
///
/// #[post("/login")]
/// async fn login(session: Session<'_>, client: ClientInfo) -> Result<&'static str, SessionError> {
///     // ... check the password of user 42 first; then, keeping the anonymous cart:
///     session.sign_in(SignIn::new("42").client(client)).await?;
///     Ok("signed in")
/// }
///
/// #[post("/login-fresh")]
/// async fn login_fresh(session: Session<'_>, client: ClientInfo) -> Result<&'static str, SessionError> {
///     // ... or starting the signed-in session empty:
///     session.sign_in(SignIn::new("42").client(client).clear_data()).await?;
///     Ok("signed in")
/// }
/// ```
#[derive(Debug, Clone)]
pub struct SignIn {
    pub(crate) user_id: String,
    pub(crate) client: ClientInfo,
    pub(crate) keep_data: bool,
}

impl SignIn {
    /// Signs in as `user_id`, keeping the session's anonymous data (a cart, say).
    pub fn new(user_id: impl Into<String>) -> Self {
        Self {
            user_id: user_id.into(),
            client: ClientInfo::default(),
            keep_data: true,
        }
    }

    /// Records `client` (the [`ClientInfo`] request guard) with the session.
    #[must_use]
    pub fn client(mut self, client: ClientInfo) -> Self {
        self.client = client;
        self
    }

    /// Starts the signed-in session with no data instead of the anonymous session's.
    #[must_use]
    pub fn clear_data(mut self) -> Self {
        self.keep_data = false;
        self
    }
}

/// One of a user's live sessions, as [`Session::devices`](crate::Session::devices) lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Names it for [`Session::revoke_device`](crate::Session::revoke_device).
    pub handle: Handle,
    /// When it signed in.
    pub signed_in_at: time::OffsetDateTime,
    /// When it was last used, as of its last write or deadline extension: requests in between
    /// (at most `touch_interval` apart) are not each recorded.
    pub last_seen: time::OffsetDateTime,
    /// The client at sign-in.
    pub client: ClientInfo,
    /// Whether it is the session that asked.
    pub current: bool,
}

/// Which of a user's sessions to end (see [`UserIndex::revoke`](crate::UserIndex::revoke)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Revoke<'a> {
    /// The one with this handle.
    Handle(&'a Handle),
    /// Every one but the one with this ID hash.
    AllBut(&'a crate::IdHash),
    /// Every one.
    All,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_kept_to_their_network() {
        let v4: IpAddr = "203.0.113.77".parse().expect("an address");
        let v6: IpAddr = "2001:db8:85a3:8d3:1319:8a2e:370:7348"
            .parse()
            .expect("an address");
        let mapped: IpAddr = "::ffff:198.51.100.9".parse().expect("an address");

        assert_eq!(network(v4), "203.0.113.0/24");
        assert_eq!(network(v6), "2001:db8:85a3::/48");
        assert_eq!(network(mapped), "198.51.100.0/24");
    }

    #[test]
    fn user_agents_are_truncated_and_empty_ones_dropped() {
        let long = "é".repeat(MAX_USER_AGENT + 50);

        let client = ClientInfo::new(Some(&long), None);

        assert_eq!(
            client.user_agent.map(|agent| agent.chars().count()),
            Some(MAX_USER_AGENT)
        );
        assert_eq!(ClientInfo::new(Some(""), None).user_agent, None);
    }

    #[test]
    fn handles_round_trip_and_refuse_anything_else() {
        let handle = Handle::generate();

        assert_eq!(Handle::parse(&handle.encode()), Some(handle));
        assert_ne!(Handle::generate(), handle);
        for bad in [
            "",
            "short",
            &"A".repeat(23),
            &format!("{}=", &handle.encode()[..21]),
        ] {
            assert_eq!(Handle::parse(bad), None, "{bad:?}");
        }
    }
}
