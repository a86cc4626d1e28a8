//! The walkthrough's Tera templates, stylesheet and one script, compiled into the binary so it
//! serves the whole app from any working directory, and the [`Page`] responder that renders them.

use rocket::fairing::AdHoc;
use rocket::http::{ContentType, Header, Status};
use rocket::request::Request;
use rocket::response::{self, Responder, content::RawHtml};
use rocket::{Route, get, routes};
use tera::Tera;

/// Every template, by the name pages render and `extends` / `import` use.
const TEMPLATES: &[(&str, &str)] = &[
    ("base", include_str!("../templates/base.html.tera")),
    ("macros", include_str!("../templates/macros.html.tera")),
    ("index", include_str!("../templates/index.html.tera")),
    ("user", include_str!("../templates/user.html.tera")),
    ("user_set", include_str!("../templates/user_set.html.tera")),
    ("login", include_str!("../templates/login.html.tera")),
    ("logout", include_str!("../templates/logout.html.tera")),
    (
        "logout_confirm",
        include_str!("../templates/logout_confirm.html.tera"),
    ),
    ("session", include_str!("../templates/session.html.tera")),
    ("error", include_str!("../templates/error.html.tera")),
    (
        "account_register",
        include_str!("../templates/account_register.html.tera"),
    ),
    (
        "account_login",
        include_str!("../templates/account_login.html.tera"),
    ),
    (
        "account_sessions",
        include_str!("../templates/account_sessions.html.tera"),
    ),
    (
        "account_password",
        include_str!("../templates/account_password.html.tera"),
    ),
];

const STYLESHEET: &str = include_str!("../static/style.css");
/// The inspector's live countdown; the only script, and the pages work without it.
const COUNTDOWN: &str = include_str!("../static/countdown.js");

/// The compiled templates, managed by [`stage`].
pub struct Templates(Tera);

impl Templates {
    /// Parses every template.
    ///
    /// # Errors
    ///
    /// Tera's error for a template that does not parse (a bug caught by the unit test below).
    pub fn load() -> Result<Self, tera::Error> {
        let mut tera = Tera::default();
        // Every template is HTML: escape every value, whatever the template's name.
        tera.autoescape_on(vec![""]);
        tera.add_raw_templates(TEMPLATES.iter().copied())?;
        Ok(Self(tera))
    }

    /// Renders `name` with `context`.
    ///
    /// # Errors
    ///
    /// Tera's error for a missing template or a context it cannot use.
    pub fn render(&self, name: &str, context: &tera::Context) -> Result<String, tera::Error> {
        self.0.render(name, context)
    }
}

/// Manages the compiled [`Templates`].
pub fn stage() -> AdHoc {
    AdHoc::try_on_ignite("Templates", |rocket| async {
        match Templates::load() {
            Ok(templates) => Ok(rocket.manage(templates)),
            Err(error) => {
                log::error!("templates: {}", crate::error::error_chain(&error));
                Err(rocket)
            }
        }
    })
}

/// A page: a template and its context, rendered when the response is sent.
pub struct Page {
    name: &'static str,
    context: Result<tera::Context, tera::Error>,
}

impl Page {
    /// The template `name` with `context`, a JSON object (`json!({ … })`), taken as it is
    /// rather than serialized again.
    pub fn render(name: &'static str, context: serde_json::Value) -> Self {
        Self {
            name,
            context: tera::Context::from_value(context),
        }
    }
}

impl<'r> Responder<'r, 'static> for Page {
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'static> {
        let Some(templates) = request.rocket().state::<Templates>() else {
            log::error!("templates are not managed: attach templates::stage()");
            return Err(Status::InternalServerError);
        };
        let html = self
            .context
            .and_then(|context| templates.render(self.name, &context))
            .map_err(|error| {
                log::error!(
                    "rendering {}: {}",
                    self.name,
                    crate::error::error_chain(&error)
                );
                Status::InternalServerError
            })?;
        RawHtml(html).respond_to(request)
    }
}

/// A file from the binary, with a cache lifetime: it is the same for everyone.
#[derive(Responder)]
struct Asset {
    body: (ContentType, &'static str),
    cache: Header<'static>,
}

impl Asset {
    fn new(content_type: ContentType, body: &'static str) -> Self {
        Self {
            body: (content_type, body),
            cache: Header::new("Cache-Control", "public, max-age=3600"),
        }
    }
}

/// `GET /static/style.css`, from the binary.
#[get("/static/style.css")]
fn stylesheet() -> Asset {
    Asset::new(ContentType::CSS, STYLESHEET)
}

/// `GET /static/countdown.js`, from the binary.
#[get("/static/countdown.js")]
fn countdown() -> Asset {
    Asset::new(ContentType::JavaScript, COUNTDOWN)
}

/// The stylesheet and script routes.
pub fn routes() -> Vec<Route> {
    routes![stylesheet, countdown]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_template_parses_and_values_are_escaped() {
        let templates = Templates::load().expect("templates parse");
        let context =
            tera::Context::from_serialize(json!({ "name": "<script>", "session_csrf": "t" }))
                .expect("context");
        let page = templates.render("user", &context).expect("renders");
        assert!(page.contains("&lt;script&gt;"), "{page}");
        assert!(!page.contains("<script>"), "{page}");
    }
}
