//! The shop's tests, one binary (one link on a small machine): does latch work in someone
//! else's app, used only through its public API? One file per thing an adopter relies on.

mod csrf;
mod helpers;
mod own_store;
mod settings;
mod store_recipe;
mod testing_helpers;
