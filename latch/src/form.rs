//! `CsrfForm<T>`: a form that checks its own CSRF token, so a handler that takes one cannot
//! forget to.

use rocket::data::{Data, FromData, Outcome};
use rocket::form::{self, DataField, Form, FromForm, Options, ValueField};
use rocket::http::Status;
use rocket::request::{self, Request};

use crate::{CsrfToken, SessionError};

/// The field a form carries its token in.
pub const TOKEN_FIELD: &str = "csrf_token";

/// A form (URL-encoded or multipart) whose `csrf_token` field is checked against this
/// browser's [`CsrfToken`] before the handler runs: take it where you would take
/// [`Form<T>`](rocket::form::Form), and render [`CsrfToken::value`] into the form's hidden
/// `csrf_token` field. `T` never sees that field.
///
/// A request it refuses never reaches the handler: a missing or wrong token, or a cross-site
/// request, is 403 ([`CsrfFormError::Session`]); a form that does not parse as `T` is what
/// `Form<T>` would answer (422 or 400, [`CsrfFormError::Form`]). Rocket hands those statuses to
/// the app's catchers; to answer them itself, take `Result<CsrfForm<T>, CsrfFormError<'_>>`.
///
/// ```no_run
/// use latch::{CsrfForm, CsrfFormError, Key, Session, SessionError};
/// use rocket::{FromForm, post};
///
/// const NOTE: Key<String> = Key::new("note");
///
/// #[derive(FromForm)]
/// struct Note {
///     text: String,
/// }
///
/// #[post("/note", data = "<form>")]
/// async fn note(session: Session<'_>, form: CsrfForm<Note>) -> Result<&'static str, SessionError> {
///     session.insert(&NOTE, &form.text).await?;
///     Ok("saved")
/// }
///
/// /// The same, answering a refused form itself.
/// #[post("/note-or-say-why", data = "<form>")]
/// async fn note_or_say_why(
///     session: Session<'_>,
///     form: Result<CsrfForm<Note>, CsrfFormError<'_>>,
/// ) -> Result<&'static str, SessionError> {
///     match form {
///         Ok(form) => {
///             session.insert(&NOTE, &form.text).await?;
///             Ok("saved")
///         }
///         Err(CsrfFormError::Form(_)) => Ok("the note is missing"),
///         Err(_) => Ok("this form has expired: reload the page"),
///     }
/// }
/// ```
#[derive(Debug)]
pub struct CsrfForm<T>(T);

impl<T> CsrfForm<T> {
    /// The form's value, without its token.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for CsrfForm<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::DerefMut for CsrfForm<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

/// Why a [`CsrfForm`] refused a request.
#[derive(Debug)]
#[non_exhaustive]
pub enum CsrfFormError<'r> {
    /// The token is missing or wrong, the request came from another site (both 403), or the
    /// session could not be read (503).
    Session(SessionError),
    /// The form did not parse as the handler's type.
    Form(form::Errors<'r>),
}

impl CsrfFormError<'_> {
    /// The status Rocket answers with when the handler does not take the error itself.
    pub fn status(&self) -> Status {
        match self {
            Self::Session(error) => error.status(),
            Self::Form(errors) => errors.status(),
        }
    }
}

#[rocket::async_trait]
impl<'r, T: FromForm<'r>> FromData<'r> for CsrfForm<T> {
    type Error = CsrfFormError<'r>;

    async fn from_data(request: &'r Request<'_>, data: Data<'r>) -> Outcome<'r, Self> {
        let token = match request.guard::<CsrfToken<'r>>().await {
            request::Outcome::Success(token) => token,
            request::Outcome::Error((status, error)) => {
                return Outcome::Error((status, CsrfFormError::Session(error)));
            }
            request::Outcome::Forward(status) => return Outcome::Forward((data, status)),
        };
        let form = match Form::<WithToken<T>>::from_data(request, data).await {
            Outcome::Success(form) => form.into_inner(),
            Outcome::Error((status, errors)) => {
                return Outcome::Error((status, CsrfFormError::Form(errors)));
            }
            Outcome::Forward(forward) => return Outcome::Forward(forward),
        };
        match token.verify(form.token.as_deref()) {
            Ok(()) => Outcome::Success(CsrfForm(form.value)),
            Err(error) => Outcome::Error((error.status(), CsrfFormError::Session(error))),
        }
    }
}

/// `T` and the form's token, parsed in one pass: the token field is taken out, every other
/// field goes to `T` as it would in `Form<T>`.
struct WithToken<T> {
    token: Option<String>,
    value: T,
}

#[rocket::async_trait]
impl<'r, T: FromForm<'r>> FromForm<'r> for WithToken<T> {
    type Context = (Option<String>, T::Context);

    fn init(options: Options) -> Self::Context {
        (None, T::init(options))
    }

    fn push_value((token, inner): &mut Self::Context, field: ValueField<'r>) {
        if field.name.source() == TOKEN_FIELD {
            *token = Some(field.value.to_owned());
        } else {
            T::push_value(inner, field);
        }
    }

    async fn push_data((_, inner): &mut Self::Context, field: DataField<'r, '_>) {
        T::push_data(inner, field).await;
    }

    fn push_error((_, inner): &mut Self::Context, error: form::Error<'r>) {
        T::push_error(inner, error);
    }

    fn finalize((token, inner): Self::Context) -> form::Result<'r, Self> {
        Ok(Self {
            token,
            value: T::finalize(inner)?,
        })
    }
}

/// A form with nothing but its token, for a button that changes state (log out, sign out
/// everywhere): take `CsrfForm<NoFields>`. Any other field is ignored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoFields;

#[rocket::async_trait]
impl<'r> FromForm<'r> for NoFields {
    type Context = ();

    fn init(_: Options) -> Self::Context {}

    fn push_value((): &mut Self::Context, _: ValueField<'r>) {}

    async fn push_data((): &mut Self::Context, _: DataField<'r, '_>) {}

    fn finalize((): Self::Context) -> form::Result<'r, Self> {
        Ok(Self)
    }
}
