//! The shop's one page, a Tera template compiled into the crate, and the stage that loads it.

use rocket::fairing::AdHoc;
use serde::Serialize;
use tera::Tera;

use crate::cart::CartLine;

/// The page's template: the cart, and the forms that add to it, sign in and check out.
const CART_PAGE: &str = include_str!("../templates/cart.html.tera");

/// The compiled template, managed by [`stage`].
pub struct Pages(Tera);

/// What the cart page shows.
#[derive(Debug, Serialize)]
pub struct CartPage<'a> {
    /// The cart's lines.
    pub cart: &'a [CartLine],
    /// Who is signed in, if anyone.
    pub customer: Option<&'a str>,
    /// The token every form of the page carries (see [`latch::CsrfToken`]).
    pub csrf_token: &'a str,
}

impl Pages {
    /// Parses the template.
    ///
    /// # Errors
    ///
    /// Tera's error for a template that does not parse.
    pub fn load() -> Result<Self, tera::Error> {
        let mut tera = Tera::default();
        // Item names are what shoppers typed: escape every value.
        tera.autoescape_on(vec![""]);
        tera.add_raw_template("cart", CART_PAGE)?;
        Ok(Self(tera))
    }

    /// The cart page.
    ///
    /// # Errors
    ///
    /// Tera's error for a context it cannot use.
    pub fn cart(&self, page: &CartPage<'_>) -> Result<String, tera::Error> {
        self.0.render("cart", &tera::Context::from_serialize(page)?)
    }
}

/// Loads the template at ignition and manages it; a template that does not parse stops the
/// launch.
pub fn stage() -> AdHoc {
    AdHoc::try_on_ignite("Pages", |rocket| async {
        match Pages::load() {
            Ok(pages) => Ok(rocket.manage(pages)),
            Err(error) => {
                log::error!("the shop's page does not parse: {error:?}");
                Err(rocket)
            }
        }
    })
}
