//! The integration tests of the vexil SDK: one binary, so it links once. Server-mode tests
//! start the real server in-process on `127.0.0.1:0` over a real SQLite store.
//!
//! - `harness`: the test server, a recording proxy, a server that never answers, waiting.
//! - `sync`: server mode — changes, outages, bootstrap, `Last-Event-ID`, polling fallback.
//! - `remote`: remote (OFREP) evaluation, its cache and its timeout.
//! - `file`: file mode — environments, errors, accessors, watching.
//! - `vectors`: the shared evaluation vectors through a file client.
//! - `testing`: the test support, and the examples on both paths.
//! - `openfeature`: the OpenFeature provider through `open-feature`'s client API (feature
//!   `openfeature`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod file;
mod harness;
#[cfg(feature = "openfeature")]
mod openfeature;
mod remote;
mod sync;
mod testing;
mod vectors;

// The examples' own code, so the tests exercise exactly what they show.
#[allow(dead_code)]
#[path = "../../examples/checkout.rs"]
mod checkout;
#[allow(dead_code)]
#[path = "../../examples/kill_switch.rs"]
mod kill_switch;
