//! The pages, rendered with Tera as latch renders its own: templates compiled into the binary
//! (shared with the tower-sessions peer, in ../templates), managed by Rocket, every value
//! escaped, and rendered by the responder.

use rocket::http::Status;
use rocket::request::Request;
use rocket::response::{self, Responder, content::RawHtml};
use serde_json::{Value, json};
use tera::{Context, Tera};

const TEMPLATES: &[(&str, &str)] = &[
    ("base", include_str!("../../templates/base.html.tera")),
    ("macros", include_str!("../../templates/macros.html.tera")),
    ("index", include_str!("../../templates/index.html.tera")),
    ("user", include_str!("../../templates/user.html.tera")),
    (
        "user_set",
        include_str!("../../templates/user_set.html.tera"),
    ),
    ("login", include_str!("../../templates/login.html.tera")),
    ("error", include_str!("../../templates/error.html.tera")),
];

/// The compiled templates, managed by Rocket.
pub struct Templates(Tera);

impl Templates {
    /// Parses every template (at start, so a broken template stops the app there).
    pub fn load() -> Result<Self, tera::Error> {
        let mut tera = Tera::default();
        // Every template is HTML: escape every value, whatever the template's name.
        tera.autoescape_on(vec![""]);
        tera.add_raw_templates(TEMPLATES.iter().copied())?;
        Ok(Self(tera))
    }
}

/// A page to render: its status, template and context (a JSON object).
pub struct Page {
    status: Status,
    template: &'static str,
    context: Value,
}

impl Page {
    pub fn new(template: &'static str, context: Value) -> Self {
        Self {
            status: Status::Ok,
            template,
            context,
        }
    }

    /// The error page for `status`, with `message` for the reader.
    pub fn error(status: Status, message: &str) -> Self {
        let context =
            json!({ "code": status.code, "reason": status.reason_lossy(), "message": message });
        Self {
            status,
            template: "error",
            context,
        }
    }
}

impl<'r> Responder<'r, 'static> for Page {
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'static> {
        let Some(Templates(tera)) = request.rocket().state::<Templates>() else {
            return Err(Status::InternalServerError);
        };
        let mut context = Context::from_value(self.context).map_err(|error| {
            eprintln!("context for {}: {error}", self.template);
            Status::InternalServerError
        })?;
        context.insert("app", "ceiling");
        let html = tera.render(self.template, &context).map_err(|error| {
            eprintln!("rendering {}: {error}", self.template);
            Status::InternalServerError
        })?;
        (self.status, RawHtml(html)).respond_to(request)
    }
}
