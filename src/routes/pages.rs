//! The server-rendered walkthrough: a page-view counter, set / view / destroy a name, and login.

use rocket::form::{Errors, Form, FromForm};
use rocket::http::Status;
use rocket::response::Redirect;
use rocket::{Either, Route, get, post, routes, uri};
use rocket_dyn_templates::{Template, context};

use super::keys::{NAME, PAGE_VIEWS};
use crate::error::AppError;
use crate::name::{MAX_NAME_CHARS, Name};
use crate::session::Session;

pub fn routes() -> Vec<Route> {
    routes![counter, set_user, show_user, logout, login_form, login]
}

/// Counts this session's visits, and greets a signed-in visitor by name.
#[get("/")]
async fn counter(session: Session<'_>) -> Result<Template, AppError> {
    let views = session
        .update(&PAGE_VIEWS, |views| views.unwrap_or(0).saturating_add(1))
        .await?;
    let name = session.get(&NAME).await?;
    Ok(Template::render("index", context! { views, name }))
}

/// Stores a name in the session.
#[get("/user/<name>")]
async fn set_user(name: &str, session: Session<'_>) -> Result<Template, AppError> {
    let name = Name::parse(name)?;
    session.insert(&NAME, &name.to_string()).await?;
    Ok(Template::render(
        "user_set",
        context! { name: name.as_str() },
    ))
}

/// Shows the stored name, if there is one.
#[get("/user")]
async fn show_user(session: Session<'_>) -> Result<Template, AppError> {
    let name = session.get(&NAME).await?;
    Ok(Template::render("user", context! { name }))
}

/// Ends the session: its row is deleted and its cookie removed.
#[get("/logout")]
async fn logout(session: Session<'_>) -> Result<Template, AppError> {
    session.destroy().await?;
    Ok(Template::render("logout", context! {}))
}

#[derive(FromForm)]
struct Login<'r> {
    username: &'r str,
}

#[get("/login")]
fn login_form() -> Template {
    login_page(None, "")
}

/// Signs in: stores the name, gives the session a new ID (so an ID seen before login is
/// worthless after it), and sends the browser to the greeting.
#[post("/login", data = "<form>")]
async fn login(
    form: Result<Form<Login<'_>>, Errors<'_>>,
    session: Session<'_>,
) -> Result<Either<Redirect, (Status, Template)>, AppError> {
    let Ok(form) = form else {
        let page = login_page(Some("Please enter a username."), "");
        return Ok(Either::Right((Status::UnprocessableEntity, page)));
    };
    let name = match Name::parse(form.username) {
        Ok(name) => name,
        Err(error) => {
            let page = login_page(Some(&format!("Invalid name: {error}.")), form.username);
            return Ok(Either::Right((Status::UnprocessableEntity, page)));
        }
    };
    session.insert(&NAME, &name.into_string()).await?;
    session.regenerate().await?;
    Ok(Either::Left(Redirect::to(uri!(counter))))
}

fn login_page(error: Option<&str>, username: &str) -> Template {
    Template::render(
        "login",
        context! { error, username, max_chars: MAX_NAME_CHARS },
    )
}
