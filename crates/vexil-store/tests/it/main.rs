//! The integration tests of vexil-store: one binary, so it links once.
//!
//! - `conformance`: the contract of `Store`, written once for every backend.
//! - `sqlite`: the suite run against SQLite, and what is particular to that backend.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod conformance;
mod sqlite;
