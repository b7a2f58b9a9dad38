//! A release flag read from a file: the new checkout for some users, the old one for the rest.
//!
//! ```sh
//! cargo run -p vexil --example checkout -- production user-123   # new (targeted)
//! cargo run -p vexil --example checkout -- production user-42    # old, unless in the 10%
//! ```
//!
//! A new feature fails closed: `is_enabled` is `false` whenever the flag cannot be evaluated,
//! so the old, known-good code runs.

use vexil::{Client, Context};

/// The checkout this user gets.
pub fn checkout(client: &Client, ctx: &Context) -> &'static str {
    if client.is_enabled("new_checkout", ctx) {
        "new checkout"
    } else {
        "old checkout"
    }
}

fn main() -> Result<(), vexil::Error> {
    let mut args = std::env::args().skip(1);
    let env = args.next();
    let user = args.next().unwrap_or_else(|| "user-42".to_owned());
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/flags.yaml");
    // The environment: the argument, else VEXIL_ENV, else the file's first.
    let client = Client::from_file(path, env.as_deref())?;
    let ctx = Context::with_targeting_key(user.as_str());
    let why = client.bool_details("new_checkout", &ctx, false);
    println!("{user}: {} ({})", checkout(&client, &ctx), why.reason);
    Ok(())
}
