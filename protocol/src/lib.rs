//! Promesa's wire protocol: the messages clients and the server exchange, their rkyv
//! encoding with validation, framing, the protocol's limits and its error codes. No
//! I/O policy: the server and the client decide how bytes move.
//!
//! A connection is QUIC with TLS 1.3 and the ALPN [`ALPN`]. On a bidirectional stream
//! the client sends frames ([`ClientFrame`]: a batch of requests, each with a client
//! id) and the server answers each with one frame ([`ServerFrame`]). The first request
//! on a connection is [`Request::Hello`]. docs/protocol.md describes the bytes.

pub mod error;
pub mod frame;
pub mod limits;
// rkyv's derive makes resolver types for the enums whose fields carry no docs; every
// hand-written item in the module is documented.
#[allow(missing_docs)]
pub mod messages;

pub use error::ErrorCode;
pub use frame::{FrameError, FrameReader, LimitError, Payload};
pub use messages::*;

/// Major version: any change to a message's layout changes it, and a server talks
/// only to clients of the same major version.
pub const PROTOCOL_MAJOR: u16 = 3;

/// Minor version: changes that keep the layout, such as a new error code.
pub const PROTOCOL_MINOR: u16 = 0;

/// The TLS application protocol name, carrying the major version.
pub const ALPN: &[u8] = b"promesa/3";

const _: () = assert!(PROTOCOL_MAJOR == 3, "ALPN names major version 3");
