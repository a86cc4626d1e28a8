//! The cart, kept in the session under [`CART`]: the page that shows it with its forms, its
//! JSON, adding to it, and signing in (which keeps it).

use latch::{ClientInfo, CsrfForm, CsrfToken, Key, Session, SignIn};
use rocket::response::Redirect;
use rocket::response::content::RawHtml;
use rocket::serde::json::Json;
use rocket::{FromForm, Route, State, get, post, routes, uri};
use serde::{Deserialize, Serialize};

use crate::ShopError;
use crate::page::{CartPage, Pages};

/// The cart's lines, in the order they were first added.
pub const CART: Key<Vec<CartLine>> = Key::new("cart");

/// The most different items a cart holds, which bounds what one session stores.
pub const MAX_LINES: usize = 20;
/// The most of one item a line holds.
pub const MAX_QUANTITY: u32 = 99;

/// One line of the cart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartLine {
    /// What the shopper typed, trimmed.
    pub item: String,
    /// How many, 1 to [`MAX_QUANTITY`] (99).
    pub quantity: u32,
}

/// The form that adds to the cart.
#[derive(Debug, FromForm)]
pub struct AddItem {
    #[field(validate = len(1..=64))]
    #[field(validate = with(|item| !item.trim().is_empty(), "an item needs a name"))]
    item: String,
    #[field(validate = range(1..=99))]
    quantity: u32,
}

/// The sign-in form.
#[derive(Debug, FromForm)]
pub struct SignInForm {
    #[field(validate = len(1..=64))]
    #[field(validate = with(|name| !name.trim().is_empty(), "a customer needs a name"))]
    customer: String,
}

/// The cart's routes.
pub fn routes() -> Vec<Route> {
    routes![page, cart, add, sign_in]
}

/// The cart page, with a form for each thing a shopper can do.
#[get("/")]
pub async fn page(
    session: Session<'_>,
    token: CsrfToken<'_>,
    pages: &State<Pages>,
) -> Result<RawHtml<String>, ShopError> {
    let cart = session.get(&CART).await?.unwrap_or_default();
    let customer = session.user().await?.map(|user| user.user_id);
    let csrf_token = token.value();
    let html = pages.cart(&CartPage {
        cart: &cart,
        customer: customer.as_deref(),
        csrf_token: &csrf_token,
    })?;
    Ok(RawHtml(html))
}

/// The cart as JSON.
#[get("/cart")]
pub async fn cart(session: Session<'_>) -> Result<Json<Vec<CartLine>>, ShopError> {
    Ok(Json(session.get(&CART).await?.unwrap_or_default()))
}

/// Adds to the cart (to the item's line if it has one), then back to the page. Decided on the
/// stored cart, so two adds at once both count and never pass [`MAX_LINES`] together.
#[post("/cart", data = "<form>")]
pub async fn add(session: Session<'_>, form: CsrfForm<AddItem>) -> Result<Redirect, ShopError> {
    let AddItem { item, quantity } = form.into_inner();
    let item = item.trim().to_owned();
    let added = session
        .try_update(&CART, |cart| {
            let mut cart = cart.unwrap_or_default();
            add_line(&mut cart, &item, quantity)?;
            Ok::<_, ShopError>(cart)
        })
        .await?;
    added?;
    Ok(Redirect::to(uri!(page)))
}

/// Adds `quantity` of `item` to its line of `cart`, or to a new line at the end.
///
/// # Errors
///
/// [`ShopError::CartFull`] when it needs a new line and the cart has [`MAX_LINES`].
pub fn add_line(cart: &mut Vec<CartLine>, item: &str, quantity: u32) -> Result<(), ShopError> {
    if let Some(line) = cart.iter_mut().find(|line| line.item == item) {
        line.quantity = line.quantity.saturating_add(quantity).min(MAX_QUANTITY);
        return Ok(());
    }
    if cart.len() >= MAX_LINES {
        return Err(ShopError::CartFull);
    }
    cart.push(CartLine {
        item: item.to_owned(),
        quantity: quantity.min(MAX_QUANTITY),
    });
    Ok(())
}

/// Signs the shopper in, keeping the cart. A real shop checks a password first; this one
/// trusts the name, since what it tests is latch's sign-in, not the shop's authentication.
#[post("/sign-in", data = "<form>")]
pub async fn sign_in(
    session: Session<'_>,
    client: ClientInfo,
    form: CsrfForm<SignInForm>,
) -> Result<Redirect, ShopError> {
    let customer = form.into_inner().customer;
    session
        .sign_in(SignIn::new(customer.trim()).client(client))
        .await?;
    Ok(Redirect::to(uri!(page)))
}
