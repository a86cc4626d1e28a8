//! Help for tests: for an app's, with Rocket's local client, sessions in memory and what a
//! browser's session holds, read in one call; for a store's, the store contract
//! ([`contract`]).
//!
//! ```no_run
//! use latch::{Key, Latch};
//! use rocket::local::asynchronous::Client;
//!
//! const VIEWS: Key<u64> = Key::new("views");
//!
//! # async fn test(rocket: rocket::Rocket<rocket::Build>) {
//! // The app under test, its sessions in memory.
//! let client = Client::tracked(rocket.attach(Latch::in_memory())).await.expect("launches");
//! client.get("/").dispatch().await;
//! let session = latch::testing::session(&client).await.expect("the store answers");
//! let views = session.and_then(|session| session.get(&VIEWS).ok().flatten());
//! assert_eq!(views, Some(1));
//! # }
//! ```

pub mod contract;

use rocket::local::asynchronous::Client;

use crate::{SessionError, SessionManager, StoredSession};

/// What the session of `client`'s cookie jar holds now (see [`SessionManager::session_in`]),
/// or `None` when the client has no live session.
///
/// # Errors
///
/// [`SessionError::NotConfigured`] when the app has no [`Latch`](crate::Latch); the store's
/// error when it fails.
pub async fn session(client: &Client) -> Result<Option<StoredSession>, SessionError> {
    let manager = client
        .rocket()
        .state::<SessionManager>()
        .ok_or(SessionError::NotConfigured)?;
    manager.session_in(&client.cookies()).await
}
