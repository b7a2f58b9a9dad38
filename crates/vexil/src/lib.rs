//! The vexil SDK for Rust: feature flags evaluated in-process.
//!
//! A [`Client`] holds compiled flag definitions and evaluates them with the same engine as the
//! vexil server ([`vexil_engine`]), so both always agree. Evaluation is local: it never waits
//! on the network, never blocks and never panics. Every accessor takes the caller's default,
//! which is what the caller gets whenever the flag cannot be evaluated.
//!
//! # A file and an if-statement
//!
//! No server is needed to start: flags can live in a `flags.yaml` in the repository.
//!
//! ```
//! use vexil::{Client, Context};
//!
//! # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/flags.yaml");
//! let client = Client::from_file(path, Some("production"))?;
//! let ctx = Context::with_targeting_key("user-123").with("plan", "enterprise");
//!
//! if client.is_enabled("new_checkout", &ctx) {
//!     // the new checkout
//! } else {
//!     // the old one
//! }
//! # assert!(client.is_enabled("new_checkout", &ctx));
//! # Ok::<(), vexil::Error>(())
//! ```
//!
//! The environment is the argument, else the `VEXIL_ENV` variable, else the file's first.
//! [`ClientBuilder::watch`] keeps following the file; a broken edit keeps the last valid
//! version. [`Client::from_text`] takes the document itself (`include_str!("flags.yaml")`).
//!
//! # Choosing the default: fail closed, fail open
//!
//! [`Client::is_enabled`] is `bool_value(key, ctx, false)`: a new feature fails *closed* — if
//! the flag is missing, mistyped or not loaded, the old code runs. An established feature
//! behind a kill switch (an `ops` flag) should fail *open*, so an outage of the flag service
//! never turns it off:
//!
//! ```
//! # use vexil::{Client, Context};
//! # let client = Client::from_text("flags:\n  search_enabled: {kind: ops, serve: on}\n", None)?;
//! # let ctx = Context::new();
//! if client.bool_value("search_enabled", &ctx, true) {
//!     // search, as always
//! } else {
//!     // "search is temporarily unavailable"
//! }
//! # Ok::<(), vexil::Error>(())
//! ```
//!
//! Typed accessors: [`Client::bool_value`], [`Client::string_value`], [`Client::number_value`],
//! [`Client::json_value`]; [`Client::details`] (and `bool_details`, …) also says why: the
//! variant, the [`Reason`], the rule that decided, and on error an [`ErrorCode`] — what an
//! OpenFeature provider maps.
//!
//! # Syncing with a server
//!
//! With a **server key** the client downloads its environment's definitions and keeps them
//! current over the server's stream (every change arrives within a second), falling back to
//! polling when the stream keeps failing. It needs a tokio runtime for its background task.
//!
//! ```no_run
//! # async fn run() -> Result<(), vexil::Error> {
//! use std::time::Duration;
//! use vexil::{Client, Context, Status};
//!
//! let client = Client::builder()
//!     .server("https://flags.example.com", "vexil_server_…")
//!     .bootstrap_file("flags-bootstrap.json") // served until the first sync
//!     .build()?;
//! if client.wait_ready(Duration::from_secs(2)).await.is_err() {
//!     // Not synced yet: the bootstrap (or the callers' defaults) is served meanwhile.
//! }
//! let on = client.is_enabled("new_checkout", &Context::with_targeting_key("user-1"));
//! assert_ne!(client.status(), Status::NotReady);
//! # let _ = on; Ok(()) }
//! ```
//!
//! ## Fail-safe behaviour
//!
//! [`Client::status`] says what is being served:
//!
//! - [`Status::NotReady`]: nothing yet (not synced, no bootstrap). Every evaluation returns the
//!   caller's default, with [`ErrorCode::ProviderNotReady`] in its details.
//! - [`Status::Bootstrapped`]: the bootstrap, until the first sync. A bootstrap is a flag
//!   document or a saved `GET /sdk/v1/flags` answer; one that cannot be read is logged and
//!   ignored (the program still starts, `NotReady`).
//! - [`Status::Ready`]: the current definitions.
//! - [`Status::Stale`]: the last known definitions, because the server cannot be reached. The
//!   client reconnects by itself, with exponential backoff and full jitter (100 ms doubling to
//!   30 s), and resumes from the last revision it has (`Last-Event-ID`), so it receives only
//!   what it missed; after three failed attempts in a row it also polls every 30 s.
//!
//! [`Client::wait_ready`] waits for the first sync; [`Client::subscribe`] notifies each change:
//!
//! ```no_run
//! # async fn run(client: vexil::Client) {
//! let mut changes = client.subscribe();
//! while changes.changed().await.is_ok() {
//!     println!("new flag definitions: revision {}", *changes.borrow_and_update());
//! }
//! # }
//! ```
//!
//! # Remote evaluation
//!
//! For thin callers that should not hold the rules, [`RemoteClient`] asks the server for each
//! evaluation (OFREP), with a 5 s cache per flag and context and a 500 ms deadline; on timeout
//! or error it returns the caller's default. Its accessors are async.
//!
//! # OpenFeature
//!
//! With the cargo feature `openfeature` (`vexil = { version = "…", features = ["openfeature"] }`),
//! `vexil::openfeature::VexilProvider` is a provider for the `open-feature` crate, so code
//! written against OpenFeature's API evaluates with vexil — in-process with a [`Client`], or
//! per call with a [`RemoteClient`]. The provider maps values, variants and reasons (vexil's
//! `PREREQUISITE_FAILED` goes out as `DEFAULT`, the exact reason in the flag metadata
//! `reason`, as the server's OFREP API does), the deciding rule (metadata `ruleIndex`,
//! `ruleName`) and error codes; it converts OpenFeature's context (targeting key, custom fields,
//! nested structures, lists, date-times). The module `vexil::openfeature` has the details; the
//! crate re-exports the `open-feature` version it implements as `vexil::openfeature::open_feature`.
//!
//! ```
//! # #[cfg(feature = "openfeature")]
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use open_feature::{EvaluationContext, OpenFeature};
//! use vexil::openfeature::VexilProvider;
//!
//! # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/flags.yaml");
//! let flags = vexil::Client::from_file(path, Some("production"))?;
//! OpenFeature::singleton_mut()
//!     .await
//!     .set_provider(VexilProvider::new(flags))
//!     .await;
//! let client = OpenFeature::singleton().await.create_client();
//!
//! let ctx = EvaluationContext::default()
//!     .with_targeting_key("user-123")
//!     .with_custom_field("plan", "enterprise");
//! // On any error OpenFeature returns an error: the default is the caller's to choose.
//! if client.get_bool_value("new_checkout", Some(&ctx), None).await.unwrap_or(false) {
//!     // the new checkout
//! }
//! match client.get_bool_details("new_checkout", Some(&ctx), None).await {
//!     Ok(details) => assert_eq!(details.variant.as_deref(), Some("on")),
//!     Err(e) => eprintln!("new_checkout: {} ({:?})", e.code, e.message),
//! }
//! # Ok(()) }
//! # #[cfg(feature = "openfeature")]
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(run())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Testing
//!
//! [`testing::TestClient`] is an in-memory client whose flags a test sets; its
//! [`client`](testing::TestClient::client) is a normal [`Client`]. [`testing::for_each_variant`]
//! runs a test body once per variant of a flag — test both paths:
//!
//! ```
//! use vexil::testing::{TestClient, for_each_variant};
//! use vexil::Context;
//!
//! fn checkout(client: &vexil::Client, ctx: &Context) -> &'static str {
//!     if client.is_enabled("new_checkout", ctx) { "new" } else { "old" }
//! }
//!
//! let flags = TestClient::new();
//! flags.set_bool("new_checkout", false);
//! for_each_variant(&flags, "new_checkout", |variant, client| {
//!     let expected = if variant == "on" { "new" } else { "old" };
//!     assert_eq!(checkout(client, &Context::with_targeting_key("u1")), expected);
//! });
//! ```

mod builder;
mod client;
mod details;
mod error;
mod file;
#[cfg(feature = "openfeature")]
pub mod openfeature;
mod remote;
mod sse;
mod sync;
pub mod testing;

pub use builder::ClientBuilder;
pub use client::{Client, Status};
pub use details::{Details, FlagError, FlagType, Rule};
pub use error::Error;
pub use remote::{
    DEFAULT_CACHE_CAPACITY, DEFAULT_CACHE_TTL, DEFAULT_TIMEOUT, RemoteClient, RemoteClientBuilder,
};
pub use vexil_engine::{
    Context, ContextError, Diagnostic, ErrorCode, LoadError, Reason, TARGETING_KEY, ValueType,
    jiff, serde_json,
};
