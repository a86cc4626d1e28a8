//! The shop's own `database_url` and `[session]` sit beside latch's `latch` table: the shop
//! launches, latch keeps its sessions where its own table says, and the shop reads its own.

use latch::{Latch, SessionManager};
use latch_adopter::settings::{ShopSession, ShopSettings};
use rocket::figment::Figment;
use rocket::figment::providers::{Format, Toml};
use rocket::http::Status;
use rocket::local::asynchronous::Client;

use crate::helpers::{self, add, cart, line};

/// What the shop's own settings say in both tests.
fn the_shops_settings() -> ShopSettings {
    ShopSettings {
        database_url: Some("mysql://shop@db/shop".to_owned()),
        session: ShopSession {
            backend: "redis".to_owned(),
            ttl: 5,
        },
    }
}

/// Launches the shop on `figment` with `Latch::fairing()`, fills a cart, and checks the shop
/// read its own settings and latch stored the session in the SQLite file at `sessions_db`,
/// its sessions lasting `idle_timeout` seconds (its `latch` table's, not the shop's `ttl`).
async fn shop_and_latch_each_read_their_own(
    figment: Figment,
    sessions_db: &std::path::Path,
    idle_timeout: u64,
) {
    let client = Client::tracked(latch_adopter::app(figment, Latch::fairing()))
        .await
        .expect("the shop launches: latch reads only its `latch` table");

    assert_eq!(add(&client, "apple", 2).await, Status::SeeOther);
    assert_eq!(cart(&client).await, vec![line("apple", 2)]);

    let settings = client.rocket().state::<ShopSettings>().expect("managed");
    assert_eq!(settings, &the_shops_settings());
    let latchs = client.rocket().state::<SessionManager>().expect("managed");
    assert_eq!(latchs.config().idle_timeout, idle_timeout);
    let url = format!("sqlite://{}", sessions_db.display());
    let pool = sqlx::SqlitePool::connect(&url)
        .await
        .expect("latch made its database where `latch.database_url` says");
    let sessions: i64 = sqlx::query_scalar("select count(*) from sessions")
        .fetch_one(&pool)
        .await
        .expect("latch's table");
    assert_eq!(sessions, 1, "the shopper's session, stored by latch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shops_own_database_url_and_session_table_never_meet_latchs() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let sessions_db = dir.path().join("s.db");
    let figment = helpers::figment()
        .merge(("database_url", "mysql://shop@db/shop"))
        .merge(("session.backend", "redis"))
        .merge(("session.ttl", 5))
        .merge(("latch.idle_timeout", 900))
        .merge((
            "latch.database_url",
            format!("sqlite://{}", sessions_db.display()),
        ));

    shop_and_latch_each_read_their_own(figment, &sessions_db, 900).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rocket_toml_with_the_shops_tables_and_latchs_launches_both() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let sessions_db = dir.path().join("s.db");
    let rocket_toml = format!(
        r#"
        [default]
        database_url = "mysql://shop@db/shop"

        [default.session]
        backend = "redis"
        ttl = 5

        [default.latch]
        database_url = "sqlite://{}"
        idle_timeout = 600
        "#,
        sessions_db.display()
    );
    let figment = helpers::figment().merge(Toml::string(&rocket_toml).nested());

    shop_and_latch_each_read_their_own(figment, &sessions_db, 600).await;
}
