//! The integration tests of vexil-store: one binary, so it links once.
//!
//! - `conformance`: the contract of `Store`, written once for every backend.
//! - `sqlite`: the suite run against SQLite, and what is particular to that backend.
//! - `postgres`: the suite run against PostgreSQL (each test in a database of its own), and a
//!   fleet of stores sharing one database.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod conformance;
mod postgres;
mod sqlite;
