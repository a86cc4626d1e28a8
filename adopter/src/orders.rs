//! The checkout: the cart becomes a row of the shop's own `orders` table, in whichever
//! database the shop keeps it (the same one latch keeps its sessions in, if the shop likes).

use latch::{CsrfForm, NoFields, Session};
use rocket::fairing::AdHoc;
use rocket::{State, post, routes};
use sqlx::{PgPool, SqlitePool};

use crate::ShopError;
use crate::cart::{CART, CartLine, add_line};

/// The shop's orders database, on a pool of the shop's own.
#[derive(Debug, Clone)]
pub enum Orders {
    /// Orders in SQLite.
    Sqlite(SqlitePool),
    /// Orders in Postgres.
    Postgres(PgPool),
}

/// The `orders` table, if it is not there yet. One statement per backend: the id column is
/// the only difference.
const CREATE_SQLITE: &str = "
    create table if not exists orders (
        id integer primary key autoincrement,
        customer text,             -- the signed-in user's id; null for a guest
        items text not null,       -- the cart's lines, as JSON
        placed_at integer not null -- Unix milliseconds
    )";
const CREATE_POSTGRES: &str = "
    create table if not exists orders (
        id bigint generated always as identity primary key,
        customer text,
        items text not null,
        placed_at bigint not null
    )";

/// Records an order; `$1` the customer, `$2` the items as JSON, `$3` the time.
const PLACE: &str = "
    insert into orders (customer, items, placed_at) values ($1, $2, $3)
    returning id";

impl Orders {
    /// Creates the `orders` table if it is not there yet.
    ///
    /// # Errors
    ///
    /// The database's error.
    pub async fn create_table(&self) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(pool) => sqlx::query(CREATE_SQLITE).execute(pool).await.map(drop),
            Self::Postgres(pool) => sqlx::query(CREATE_POSTGRES).execute(pool).await.map(drop),
        }
    }

    /// Records an order of `items` for `customer` (none for a guest), and returns its number.
    ///
    /// # Errors
    ///
    /// The database's error.
    pub async fn place(
        &self,
        customer: Option<&str>,
        items: &[CartLine],
        now: i64,
    ) -> Result<i64, ShopError> {
        let items = serde_json::to_string(items).map_err(|e| sqlx::Error::Encode(e.into()))?;
        let id = match self {
            Self::Sqlite(pool) => {
                sqlx::query_scalar(PLACE)
                    .bind(customer)
                    .bind(items)
                    .bind(now)
                    .fetch_one(pool)
                    .await?
            }
            Self::Postgres(pool) => {
                sqlx::query_scalar(PLACE)
                    .bind(customer)
                    .bind(items)
                    .bind(now)
                    .fetch_one(pool)
                    .await?
            }
        };
        Ok(id)
    }
}

/// Creates the `orders` table at ignition, manages `orders` and mounts the checkout; a
/// database that cannot create it stops the launch.
pub fn stage(orders: Orders) -> AdHoc {
    AdHoc::try_on_ignite("Orders", |rocket| async move {
        match orders.create_table().await {
            Ok(()) => Ok(rocket.manage(orders).mount("/", routes![checkout])),
            Err(error) => {
                log::error!("the orders table: {error:?}");
                Err(rocket)
            }
        }
    })
}

/// Turns the cart into an order, and answers its number. The cart is taken out of the
/// session in one write before the order is recorded, so two checkouts at once (a double
/// click) cannot both order it; if recording fails, the cart is put back.
#[post("/checkout", data = "<form>")]
pub async fn checkout(
    session: Session<'_>,
    orders: &State<Orders>,
    form: CsrfForm<NoFields>,
) -> Result<String, ShopError> {
    let NoFields = form.into_inner();
    let cart = session
        .edit(|data| {
            let cart = data.get(&CART)?.unwrap_or_default();
            data.remove(&CART);
            Ok(cart)
        })
        .await?;
    if cart.is_empty() {
        return Err(ShopError::EmptyCart);
    }
    let customer = session.user().await?.map(|user| user.user_id);
    match orders
        .place(customer.as_deref(), &cart, unix_ms_now())
        .await
    {
        Ok(id) => Ok(format!("order {id} placed")),
        Err(error) => {
            // Back in front of whatever was added meanwhile (up to the cart's limit).
            session
                .update(&CART, |added| {
                    let mut restored = cart.clone();
                    for line in added.unwrap_or_default() {
                        let _full = add_line(&mut restored, &line.item, line.quantity);
                    }
                    restored
                })
                .await?;
            Err(error)
        }
    }
}

/// Now, in the Unix milliseconds the `orders` table keeps.
fn unix_ms_now() -> i64 {
    let nanos = latch::time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    i64::try_from(nanos / 1_000_000).unwrap_or(i64::MAX)
}
