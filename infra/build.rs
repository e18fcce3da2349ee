// `sqlx::migrate!` embeds the migrations at compile time, and Cargo does not know it reads them: without this, a
// migration added to a built tree is missing from the next incremental build's binaries.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
