//! Rebuilds the app when one of its migrations is added: `sqlx::migrate!` embeds the folder.

fn main() {
    println!("cargo::rerun-if-changed=migrations");
}
