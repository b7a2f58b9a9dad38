//! The integration tests of vexil-server: one binary, so it links once. Every test starts the
//! real server on `127.0.0.1:0` over a real SQLite store and talks HTTP to it.
//!
//! - `harness`: the test server, the HTTP helpers and their assertions.
//! - `routes`: every admin and simple-API route, one behaviour at a time.
//! - `ofrep`: OFREP single and bulk evaluation.
//! - `explain`: an evaluation and why, for the web UI's playground.
//! - `auth`: the authorization matrix, every route × every kind of caller.
//! - `bad_input`: malformed, oversized and invalid requests: a clear 4xx, nothing written.
//! - `concurrency`: concurrent writers with `If-Match`, and read-your-writes.
//! - `file_mode`: serving a flag file read-only and reloading it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth;
mod bad_input;
mod concurrency;
mod explain;
mod file_mode;
mod harness;
mod ofrep;
mod routes;
mod web;
