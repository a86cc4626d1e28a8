//! `ShopError`: every way a shop request fails, named after its outcome. Session errors keep
//! latch's answer (its status, and its catcher); the shop's own internal errors are logged
//! with their chain and answered with an opaque 500.

use latch::SessionError;
use rocket::http::Status;
use rocket::request::Request;
use rocket::response::{self, Responder};

use crate::cart::MAX_LINES;

/// A shop request that failed.
#[derive(Debug, thiserror::Error)]
pub enum ShopError {
    /// The session layer refused or failed (latch chose the status).
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The cart already holds as many different items as it may (422).
    #[error("the cart holds at most {MAX_LINES} different items")]
    CartFull,
    /// A checkout of an empty cart (422).
    #[error("the cart is empty")]
    EmptyCart,
    /// The shop's own database failed (500).
    #[error("the orders database failed")]
    Orders(#[from] sqlx::Error),
    /// A page did not render (500).
    #[error("the page could not be rendered")]
    Page(#[from] tera::Error),
}

impl ShopError {
    /// The status the request gets.
    pub fn status(&self) -> Status {
        match self {
            Self::Session(error) => error.status(),
            Self::CartFull | Self::EmptyCart => Status::UnprocessableEntity,
            Self::Orders(_) | Self::Page(_) => Status::InternalServerError,
        }
    }
}

/// A refusal the shopper can act on is answered with its message; anything else goes to the
/// catcher for its status, logged first when it is the server's fault.
impl<'r> Responder<'r, 'static> for ShopError {
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'static> {
        match self {
            Self::Session(error) => error.respond_to(request),
            Self::CartFull | Self::EmptyCart => {
                (self.status(), self.to_string()).respond_to(request)
            }
            Self::Orders(_) | Self::Page(_) => {
                log::error!("shop error: {self:?}");
                Err(self.status())
            }
        }
    }
}
