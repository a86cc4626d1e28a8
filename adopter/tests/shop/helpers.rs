//! What every test of the shop needs: its figment, a browser's steps (read the page's token,
//! add to the cart, sign in), and a fresh Postgres database when one is configured.

use latch_adopter::cart::CartLine;
use rocket::figment::Figment;
use rocket::http::{ContentType, Status};
use rocket::local::asynchronous::{Client, LocalResponse};

/// A fixed key for the tests only, so cookies open on every instance of one test.
pub const SECRET_KEY: &str = "/O3Ial7b9XpGNXULm2Fj/FDiYW3/c9+GsTTmOhntTmU=";

/// Rocket's debug defaults, quiet, with the test key: no `Rocket.toml` up the tree and no
/// `ROCKET_*` variable of the machine leaks in.
pub fn figment() -> Figment {
    Figment::from(rocket::Config::debug_default())
        .merge(("log_level", "off"))
        .merge(("secret_key", SECRET_KEY))
}

/// The CSRF token the shop's page renders into its forms, as a browser reads it.
pub async fn page_token(client: &Client) -> String {
    let response = client.get("/").dispatch().await;
    assert_eq!(response.status(), Status::Ok, "the cart page");
    let page = response.into_string().await.expect("a page");
    let start = page
        .find(r#"name="csrf_token" value=""#)
        .map(|at| at + r#"name="csrf_token" value=""#.len())
        .expect("the page's forms carry a token");
    let end = page[start..].find('"').expect("the value ends") + start;
    page[start..end].to_owned()
}

/// Posts a URL-encoded form (`body` must be encoded already).
pub async fn post_form<'c>(client: &'c Client, path: &'c str, body: String) -> LocalResponse<'c> {
    client
        .post(path)
        .header(ContentType::Form)
        .body(body)
        .dispatch()
        .await
}

/// Adds `quantity` of `item` (URL-safe) with the token of a freshly read page: the status.
pub async fn add(client: &Client, item: &str, quantity: u32) -> Status {
    let token = page_token(client).await;
    let body = format!("item={item}&quantity={quantity}&csrf_token={token}");
    post_form(client, "/cart", body).await.status()
}

/// Signs in as `customer` (URL-safe) with the token of a freshly read page: the status.
pub async fn sign_in(client: &Client, customer: &str) -> Status {
    let token = page_token(client).await;
    let body = format!("customer={customer}&csrf_token={token}");
    post_form(client, "/sign-in", body).await.status()
}

/// The cart, as `GET /cart` answers it.
pub async fn cart(client: &Client) -> Vec<CartLine> {
    let response = client.get("/cart").dispatch().await;
    assert_eq!(response.status(), Status::Ok, "GET /cart");
    response.into_json().await.expect("the cart as JSON")
}

/// A cart line.
pub fn line(item: &str, quantity: u32) -> CartLine {
    CartLine {
        item: item.to_owned(),
        quantity,
    }
}

/// A fresh Postgres database, dropped by [`finish`](Self::finish): created on the admin URL in
/// `LATCH_TEST_POSTGRES_URL`. `None` when that is unset, unless `LATCH_REQUIRE_POSTGRES=1`
/// makes that a failure (as latch's own tests do).
pub struct Postgres {
    pub url: String,
    name: String,
    admin: String,
}

impl Postgres {
    pub async fn create() -> Option<Self> {
        let Ok(admin) = std::env::var("LATCH_TEST_POSTGRES_URL") else {
            assert!(
                std::env::var("LATCH_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "LATCH_REQUIRE_POSTGRES=1 but LATCH_TEST_POSTGRES_URL is not set"
            );
            eprintln!("skipped: set LATCH_TEST_POSTGRES_URL to run the Postgres half");
            return None;
        };
        // Random enough for parallel runs: a session ID is 256 bits from the CSPRNG.
        let suffix: String = latch::SessionId::generate().hash().0[..6]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        let name = format!("shop_test_{suffix}");
        let pool = sqlx::PgPool::connect(&admin).await.expect("the admin URL");
        sqlx::query(sqlx::AssertSqlSafe(format!("create database {name}")))
            .execute(&pool)
            .await
            .expect("create database");
        pool.close().await;
        let (server, _) = admin.rsplit_once('/').expect("a URL with a database");
        Some(Self {
            url: format!("{server}/{name}"),
            name,
            admin,
        })
    }

    /// Drops the database, closing whatever connections still use it.
    pub async fn finish(self) {
        let pool = sqlx::PgPool::connect(&self.admin)
            .await
            .expect("the admin URL");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "drop database if exists {} with (force)",
            self.name
        )))
        .execute(&pool)
        .await
        .expect("drop database");
    }
}
