//! The pages, rendered with Tera as latch renders its own: templates compiled into the binary
//! (shared with the ceiling peer, in ../templates), every value escaped.

use std::sync::OnceLock;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
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

/// Set once by [`load`]; a static so that an error, which has no access to the app's state,
/// can render its page too.
static TERA: OnceLock<Tera> = OnceLock::new();

/// Parses every template (at start, so a broken template stops the app there).
pub fn load() -> Result<(), tera::Error> {
    let mut tera = Tera::default();
    // Every template is HTML: escape every value, whatever the template's name.
    tera.autoescape_on(vec![""]);
    tera.add_raw_templates(TEMPLATES.iter().copied())?;
    // A second call would parse the same templates: keeping the first is the same.
    let _ = TERA.set(tera);
    Ok(())
}

/// A rendered page, or a plain 500 if rendering failed (a bug in a template or its context).
pub struct Page(StatusCode, Option<String>);

impl Page {
    pub fn new(template: &str, mut context: Context) -> Self {
        Self::with_status(StatusCode::OK, template, &mut context)
    }

    /// The error page for `status`, with `message` for the reader.
    pub fn error(status: StatusCode, message: &str) -> Self {
        let mut context = Context::new();
        context.insert("code", &status.as_u16());
        context.insert("reason", status.canonical_reason().unwrap_or(""));
        context.insert("message", message);
        Self::with_status(status, "error", &mut context)
    }

    fn with_status(status: StatusCode, template: &str, context: &mut Context) -> Self {
        context.insert("app", "tower-sessions");
        let html = TERA
            .get()
            .and_then(|tera| match tera.render(template, context) {
                Ok(html) => Some(html),
                Err(error) => {
                    eprintln!("rendering {template}: {error}");
                    None
                }
            });
        Self(status, html)
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        match self {
            Self(status, Some(html)) => (status, Html(html)).into_response(),
            Self(_, None) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "page not rendered").into_response()
            }
        }
    }
}
