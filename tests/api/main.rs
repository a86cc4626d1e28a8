//! latch's integration tests: one binary, one module per feature. Most tests run twice, once on
//! SQLite and once on PostgreSQL (see `backend_tests!` in `helpers`).

mod helpers;

mod api;
mod concurrency;
mod cookies;
mod expiry;
mod outage;
mod pages;
mod purge;
mod session_api;
mod startup;
