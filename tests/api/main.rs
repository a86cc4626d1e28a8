//! latch's integration tests: one binary, one module per feature. Most tests run twice, once on
//! SQLite and once on PostgreSQL (see `backend_tests!` in `helpers`).

mod helpers;

mod accounts;
mod api;
mod attacks;
mod browser;
mod cli;
mod cluster;
mod concurrency;
mod cookies;
mod crash;
mod expiry;
mod failover;
mod formation;
mod hardening;
mod hostile;
mod inspect;
mod instances;
mod launch;
mod notify;
mod outage;
mod pages;
mod pooler;
mod purge;
mod server;
mod session_api;
mod startup;
