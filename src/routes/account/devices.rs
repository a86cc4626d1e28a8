//! The device list, `/account/sessions`: where this account is signed in, and signing out one
//! other device or all of them.

use rocket::form::FromForm;
use rocket::response::Redirect;
use rocket::{get, post};
use serde_json::{Value, json};

use super::{render, signed_out_form, to_devices, to_sign_in};
use crate::error::AppError;
use crate::flash::{self, Kind};
use crate::routes::pages::refused;
use crate::signed_in::SignedInUser;
use crate::templates::Page;
use crate::user_agent;
use latch::{CsrfForm, CsrfFormError, CsrfToken, Handle, NoFields, Session};

#[derive(FromForm)]
pub(super) struct HandleForm<'r> {
    handle: Option<&'r str>,
}

/// Where this account is signed in, with a button to sign out each other device and one for
/// all of them.
#[get("/sessions")]
pub(super) async fn sessions(
    session: Session<'_>,
    csrf: CsrfToken<'_>,
    _user: SignedInUser,
) -> Result<Page, AppError> {
    let devices: Vec<Value> = session
        .devices()
        .await?
        .into_iter()
        .map(|device| {
            json!({
                "handle": device.handle.encode(),
                "current": device.current,
                "signed_in": utc(device.signed_in_at),
                "last_seen": utc(device.last_seen),
                "browser": user_agent::describe(device.client.user_agent.as_deref().unwrap_or("")),
                // The raw string, for the name's hover title.
                "user_agent": device.client.user_agent,
                "address": device.client.address.unwrap_or_else(|| "unknown address".into()),
            })
        })
        .collect();
    render(
        "account_sessions",
        &session,
        &csrf,
        json!({ "devices": devices }),
    )
    .await
}

#[get("/sessions", rank = 2)]
pub(super) fn sessions_signed_out() -> Redirect {
    to_sign_in()
}

/// Signs out the device with this handle (only ever one of this account's).
#[post("/sessions/revoke", data = "<form>")]
pub(super) async fn revoke(
    form: Result<CsrfForm<HandleForm<'_>>, CsrfFormError<'_>>,
    session: Session<'_>,
    user: SignedInUser,
) -> Result<Redirect, AppError> {
    let form = form.map_err(refused)?;
    let Some(handle) = form.handle.and_then(Handle::parse) else {
        return Err(AppError::BadRequest(
            "that is not a device of this list".into(),
        ));
    };
    let revoked = session.revoke_device(&handle).await?;
    if handle == user.handle {
        // This device signed itself out.
        return Ok(to_sign_in());
    }
    let message = if revoked {
        (Kind::Success, "That device is signed out.")
    } else {
        (Kind::Error, "That device was already signed out.")
    };
    flash::push(&session, message.0, message.1).await?;
    Ok(to_devices())
}

/// Signs out every other device of this account.
#[post("/sessions/revoke-others", data = "<form>")]
pub(super) async fn revoke_others(
    form: Result<CsrfForm<NoFields>, CsrfFormError<'_>>,
    session: Session<'_>,
    _user: SignedInUser,
) -> Result<Redirect, AppError> {
    form.map_err(refused)?;
    let ended = session.revoke_other_devices().await?;
    flash::push(
        &session,
        Kind::Success,
        format!(
            "Signed out everywhere else ({ended} {}).",
            plural(ended, "session")
        ),
    )
    .await?;
    Ok(to_devices())
}

#[post("/sessions/revoke", data = "<form>", rank = 2)]
pub(super) fn revoke_signed_out(
    form: Result<CsrfForm<NoFields>, CsrfFormError<'_>>,
) -> Result<Redirect, AppError> {
    signed_out_form(form)
}

#[post("/sessions/revoke-others", data = "<form>", rank = 2)]
pub(super) fn revoke_others_signed_out(
    form: Result<CsrfForm<NoFields>, CsrfFormError<'_>>,
) -> Result<Redirect, AppError> {
    signed_out_form(form)
}

/// A time as `{"date": "2026-11-30", "time": "21:04 UTC"}`.
fn utc(at: time::OffsetDateTime) -> Value {
    let at = at.to_offset(time::UtcOffset::UTC);
    json!({
        "date": format!("{:04}-{:02}-{:02}", at.year(), u8::from(at.month()), at.day()),
        "time": format!("{:02}:{:02} UTC", at.hour(), at.minute()),
    })
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        noun.to_owned()
    } else {
        format!("{noun}s")
    }
}
