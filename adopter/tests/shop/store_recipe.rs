//! The guide's store recipe on pools of the shop's own: `SqliteStore::open(pool)` and
//! `PostgresStore::open(pool)`, `.batched().cached(100_000)`, `Latch::with_store`. The cart is
//! kept, and the shop's `orders` table sits in the same database beside latch's `sessions`.

use std::error::Error;

use latch::{Latch, PostgresStore, SqliteStore};
use latch_adopter::orders::{self, Orders};
use rocket::http::Status;
use rocket::local::asynchronous::Client;
use rocket::{Build, Rocket};

use crate::helpers::{self, Postgres, add, cart, line, page_token, post_form};

/// The shop on SQLite at `url`, as the guide's recipe builds it, with its orders in the same
/// database.
async fn shop_on_sqlite(url: &str) -> Result<(Rocket<Build>, Orders), Box<dyn Error>> {
    let pool = sqlx::SqlitePool::connect(url).await?;
    let orders = Orders::Sqlite(pool.clone());
    let store = SqliteStore::open(pool).await?.batched().cached(100_000);
    let rocket = latch_adopter::app(helpers::figment(), Latch::with_store(store))
        .attach(orders::stage(orders.clone()));
    Ok((rocket, orders))
}

/// The same on Postgres.
async fn shop_on_postgres(url: &str) -> Result<(Rocket<Build>, Orders), Box<dyn Error>> {
    let pool = sqlx::PgPool::connect(url).await?;
    let orders = Orders::Postgres(pool.clone());
    let store = PostgresStore::open(pool).await?.batched().cached(100_000);
    let rocket = latch_adopter::app(helpers::figment(), Latch::with_store(store))
        .attach(orders::stage(orders.clone()));
    Ok((rocket, orders))
}

/// How many rows `table` holds.
async fn rows(orders: &Orders, table: &str) -> i64 {
    let count = sqlx::AssertSqlSafe(format!("select count(*) from {table}"));
    match orders {
        Orders::Sqlite(pool) => sqlx::query_scalar(count).fetch_one(pool).await,
        Orders::Postgres(pool) => sqlx::query_scalar(count).fetch_one(pool).await,
    }
    .expect("the table is there")
}

/// The items of the one order.
async fn the_only_orders_items(orders: &Orders) -> String {
    let items = "select items from orders";
    match orders {
        Orders::Sqlite(pool) => sqlx::query_scalar(items).fetch_one(pool).await,
        Orders::Postgres(pool) => sqlx::query_scalar(items).fetch_one(pool).await,
    }
    .expect("one order")
}

/// Fills a cart over a few requests and checks it out: the cart is kept between requests,
/// becomes one row of the shop's `orders`, and latch's `sessions` holds the one session.
async fn a_cart_is_kept_and_checked_out_beside_latchs_table(
    rocket: Rocket<Build>,
    orders: &Orders,
) {
    let client = Client::tracked(rocket).await.expect("the shop launches");

    assert_eq!(add(&client, "apple", 2).await, Status::SeeOther);
    assert_eq!(add(&client, "pear", 1).await, Status::SeeOther);
    assert_eq!(add(&client, "apple", 1).await, Status::SeeOther);
    assert_eq!(cart(&client).await, vec![line("apple", 3), line("pear", 1)]);

    let token = page_token(&client).await;
    let checkout = post_form(&client, "/checkout", format!("csrf_token={token}")).await;
    assert_eq!(checkout.status(), Status::Ok);
    assert_eq!(
        checkout.into_string().await.as_deref(),
        Some("order 1 placed")
    );

    assert_eq!(cart(&client).await, vec![], "the cart became the order");
    assert_eq!(rows(orders, "orders").await, 1);
    assert_eq!(
        the_only_orders_items(orders).await,
        r#"[{"item":"apple","quantity":3},{"item":"pear","quantity":1}]"#
    );
    assert_eq!(
        rows(orders, "sessions").await,
        1,
        "latch's, in the same database"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guides_recipe_keeps_the_cart_beside_the_shops_orders_on_sqlite() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("shop.db").display());
    let (rocket, orders) = shop_on_sqlite(&url).await.expect("the recipe builds");

    a_cart_is_kept_and_checked_out_beside_latchs_table(rocket, &orders).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guides_recipe_keeps_the_cart_beside_the_shops_orders_on_postgres() {
    let Some(database) = Postgres::create().await else {
        return;
    };
    let (rocket, orders) = shop_on_postgres(&database.url)
        .await
        .expect("the recipe builds");

    a_cart_is_kept_and_checked_out_beside_latchs_table(rocket, &orders).await;

    // Dropped with whatever connections the store and the shop still hold.
    database.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_checkouts_of_one_cart_released_together_place_one_order() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("shop.db").display());
    let (rocket, orders) = shop_on_sqlite(&url).await.expect("the recipe builds");
    let client = Client::tracked(rocket).await.expect("the shop launches");
    assert_eq!(add(&client, "apple", 2).await, Status::SeeOther);
    let token = page_token(&client).await;

    // A double click: the same form, twice, at once.
    let (first, second) = tokio::join!(
        post_form(&client, "/checkout", format!("csrf_token={token}")),
        post_form(&client, "/checkout", format!("csrf_token={token}")),
    );

    let mut statuses = [first.status().code, second.status().code];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 422], "one order, and one empty cart");
    assert_eq!(rows(&orders, "orders").await, 1);
}
