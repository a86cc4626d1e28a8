//! A small shop written against latch's public API only, as another team would write it:
//! a cart kept in the session, a sign-in, a checkout into an `orders` table of its own, and
//! settings of its own beside latch's. Nothing here reaches into latch's internals; what it
//! needs it takes from `latch`'s exports and its guide (`latch/README.md`).
//!
//! Its tests (`tests/shop/`) check that latch works in someone else's app: the shop's own
//! `database_url` and `[session]` never meet latch's table, the guide's store recipe runs on
//! the shop's own pools (SQLite and Postgres) beside its own table, a store of the shop's own
//! passes latch's exported contract and serves the app, the testing helpers read what a
//! browser's session holds, and the forms refuse what they should.
//!
//! The app is [`app`]: Rocket with the figment it is given, the session layer it is given
//! (`Latch::fairing()`, `Latch::with_store(..)`, `Latch::in_memory()`), the shop's settings
//! ([`settings`]), its page ([`page`]) and its routes ([`cart`]). The checkout is a stage of
//! its own ([`orders::stage`]), attached when the shop has an orders database.

pub mod cart;
pub mod error;
pub mod orders;
pub mod page;
pub mod settings;
pub mod store;

use latch::Latch;
use rocket::figment::Figment;
use rocket::{Build, Rocket};

pub use error::ShopError;

/// The shop, configured by `figment`, its sessions kept as `sessions` says.
pub fn app(figment: Figment, sessions: Latch) -> Rocket<Build> {
    rocket::custom(figment)
        .attach(sessions)
        .attach(settings::stage())
        .attach(page::stage())
        .mount("/", cart::routes())
}
