//! Promesa's server: a QUIC endpoint with TLS 1.3 that authenticates clients by token,
//! decodes and validates their frames, runs them against the engine, and responds to
//! each frame once the write-ahead log contains its changes.
//!
//! - [`execute`]: frames to engine calls and back; `routing` converts the routing
//!   requests and plans, and `supply` the inbound supply requests and results.
//! - [`server`]: connections, streams, limits, the expiry timer, shutdown.
//! - [`acknowledger`]: one thread that waits for the log for every frame in flight.
//! - [`tls`] and [`auth`]: certificates and tokens, with development defaults written
//!   to the data folder.

pub mod acknowledger;
pub mod auth;
pub mod execute;
mod files;
mod routing;
pub mod server;
mod supply;
pub mod tls;

pub use server::{Recovery, Server, ServerConfig};
