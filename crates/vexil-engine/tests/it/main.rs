//! Integration tests of the engine: the shared vectors, invalid documents, properties,
//! explanations and allocation behaviour. One binary, many modules.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod explain;
mod props;
mod schema;
mod vectors;
