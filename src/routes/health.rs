//! `GET /healthz` for load balancers: 200 when the database answers, 503 when it does not.

use rocket::http::Status;
use rocket::{Route, State, get, routes};

use crate::error::error_chain;
use latch::Database;

pub fn routes() -> Vec<Route> {
    routes![healthz]
}

#[get("/healthz")]
async fn healthz(database: &State<Database>) -> (Status, &'static str) {
    match database.ping().await {
        Ok(()) => (Status::Ok, "ok\n"),
        Err(error) => {
            log::warn!("health check failed: {}", error_chain(&error));
            (Status::ServiceUnavailable, "database unavailable\n")
        }
    }
}
