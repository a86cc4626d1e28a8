//! Serves the latch app; everything it does is built in the library.

#[rocket::launch]
fn launch() -> _ {
    latch::rocket(latch::figment())
}
