//! svrd's management plane, without the data plane: what an operator sees of a running
//! router and the few actions they may take.
//!
//! ```text
//!  svrctl ──(Unix socket, one JSON line each way)──▶ svrd management thread
//!                                                     framing::read_line (bounded)
//!                                                     dispatch::handle(line, &backend)
//!                                                       proto::parse_request ─▶ Request
//!                                                       Backend (svrd adapts its state
//!                                                         into the plain `model` structs)
//!                                                     ◀─ one response line
//!  Prometheus ──(HTTP GET /metrics)──▶ svrd metrics thread: http::parse_request,
//!                                      metrics::render(peers, stats, sessions by service)
//! ```
//!
//! Everything here is sans-IO (the bounded line reader takes any `BufRead`): the sockets,
//! threads and clocks are svrd's. This crate never depends on `fastpath`: svrd copies what
//! it shows into [`model`] structs, so the protocol cannot leak a key or a data-plane type.
//!
//! The protocol is versioned newline-delimited JSON ([`proto`]):
//!
//! ```text
//! → {"v":1,"cmd":"show-sessions","service":"site-b"}
//! ← {"v":1,"ok":true,"data":{...}}
//! ← {"v":1,"ok":false,"error":{"kind":"unknown-command","message":"..."}}
//! ```
#![forbid(unsafe_code)]

pub mod dispatch;
pub mod framing;
pub mod http;
pub mod metrics;
pub mod model;
pub mod proto;
pub mod table;
pub mod time;
pub mod views;

pub use dispatch::{handle, respond, Backend};
pub use proto::{ErrorKind, MgmtError, Request, MAX_REQUEST, VERSION};
