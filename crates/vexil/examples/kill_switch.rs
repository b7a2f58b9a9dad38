//! A kill switch: an established feature behind an `ops` flag that fails OPEN.
//!
//! ```sh
//! cargo run -p vexil --example kill_switch
//! ```
//!
//! Search has worked for years; the `search_enabled` flag exists to turn it off during an
//! incident. If the flag cannot be evaluated (a typo, a missing file, a flag service that is
//! down), search must stay on: the default passed to `bool_value` is `true`.

use vexil::{Client, Context};

/// What the search box does for this request.
pub fn search(client: &Client, ctx: &Context, query: &str) -> String {
    if client.bool_value("search_enabled", ctx, true) {
        format!("results for {query:?}")
    } else {
        "search is temporarily unavailable".to_owned()
    }
}

fn main() -> Result<(), vexil::Error> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/flags.yaml");
    let client = Client::from_file(path, Some("production"))?;
    let ctx = Context::with_targeting_key("user-42");
    println!("{}", search(&client, &ctx, "red shoes"));

    // The same call on a flag that does not exist: the default keeps the feature on.
    let missing = client.bool_details("search_enabld", &ctx, true);
    println!(
        "a mistyped flag serves {} ({})",
        missing.value,
        missing.error_code().map_or("no error", |c| c.as_str())
    );
    Ok(())
}
