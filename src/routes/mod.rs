//! The walkthrough's pages, its JSON API and the session inspector: the app the session layer
//! serves.

mod account;
mod api;
mod health;
mod inspect;
mod pages;

pub use account::routes as account;
pub use api::routes as api;
pub use health::routes as health;
pub use inspect::routes as inspect;
pub use pages::routes as pages;

use latch::Key;

/// The session keys this app stores.
mod keys {
    use super::Key;

    /// The visitor's name, set by `/user/<name>`, the login form or `POST /name`.
    pub const NAME: Key<String> = Key::new("name");
    /// How many times this session has seen `/`.
    pub const PAGE_VIEWS: Key<u64> = Key::new("page_views");
    /// The username of the account this session is signed in to (the "Real accounts" step),
    /// kept for the header so showing it costs no query.
    pub const ACCOUNT_NAME: Key<String> = Key::new("account_name");
}
