//! The JSON API, mounted at `/name`: read and set the session's name.

use rocket::serde::json::{self, Json};
use rocket::{Route, get, post, routes};
use serde::{Deserialize, Serialize};

use super::keys::NAME;
use crate::error::{ApiError, AppError};
use crate::name::Name;
use crate::session::Session;

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

/// Stores `{"name": "…"}` and echoes it back.
#[post("/", data = "<body>")]
async fn set_name(
    body: Result<Json<SetName>, json::Error<'_>>,
    session: Session<'_>,
) -> Result<Json<NameBody>, ApiError> {
    let body = body.map_err(body_error)?;
    let name = Name::parse(&body.name)?.into_string();
    session.insert(&NAME, &name).await?;
    Ok(Json(NameBody { name }))
}

fn body_error(error: json::Error<'_>) -> AppError {
    match error {
        json::Error::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => AppError::TooLarge,
        json::Error::Io(_) => AppError::BadRequest("the body is not valid UTF-8 text".into()),
        json::Error::Parse(_, e) => AppError::BadRequest(format!(
            "the body must be a JSON object with a string `name` ({e})"
        )),
    }
}
