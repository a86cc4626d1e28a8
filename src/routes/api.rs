//! The JSON API, mounted at `/name`: read and set the session's name.

use rocket::http::ContentType;
use rocket::serde::json::{self, Json};
use rocket::{Route, get, post, routes};
use serde::{Deserialize, Serialize};

use super::keys::NAME;
use crate::error::{ApiError, AppError};
use crate::name::Name;
use latch::Session;

pub fn routes() -> Vec<Route> {
    routes![get_name, set_name]
}

#[derive(Serialize)]
struct NameBody {
    name: String,
}

#[derive(Deserialize)]
struct SetName {
    name: String,
}

/// `{"name": "…"}`, or `{"name": ""}` when none is stored.
#[get("/")]
async fn get_name(session: Session<'_>) -> Result<Json<NameBody>, ApiError> {
    let name = session.get(&NAME).await?.unwrap_or_default();
    Ok(Json(NameBody { name }))
}

/// Stores `{"name": "…"}` and echoes it back. Only `Content-Type: application/json` is taken:
/// a cross-site form or a "simple" `fetch` cannot send that without a CORS preflight, which
/// latch never grants.
#[post("/", data = "<body>")]
async fn set_name(
    content_type: Option<&ContentType>,
    body: Result<Json<SetName>, json::Error<'_>>,
    session: Session<'_>,
) -> Result<Json<NameBody>, ApiError> {
    if !content_type.is_some_and(|content_type| content_type.is_json()) {
        return Err(AppError::UnsupportedMediaType.into());
    }
    let body = body.map_err(body_error)?;
    let name = Name::parse(&body.name)?.into_string();
    session.insert(&NAME, &name).await?;
    Ok(Json(NameBody { name }))
}

fn body_error(error: json::Error<'_>) -> AppError {
    match error {
        json::Error::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => AppError::TooLarge,
        json::Error::Io(_) => AppError::BadRequest("the body is not valid UTF-8 text".into()),
        json::Error::Parse(..) => AppError::BadRequest(
            "the body must be a JSON object with a string `name`, like {\"name\": \"Ada\"}".into(),
        ),
    }
}
