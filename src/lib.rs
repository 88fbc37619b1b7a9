//! ipsec-server: an IKEv2 responder with a userspace ESP data plane bridged to TUN.
//!
//! Layers (ARCHITECTURE.md §1; the import graph is held by tests/layering.rs): `wire`
//! (codecs), `crypto` (transforms, key schedule), `ipsec` (SA database, ESP), `pool`, `ike`
//! (sans-IO responder), `config`, then the OS code: `io`, `api`, `daemon`.
//!
//! The compiler keeps the layering: `unsafe` is denied for the whole package (Cargo.toml's
//! `[lints]`; only the system-call wrappers in `io` and the SHA-NI kernel
//! `crypto::sha1_multi` allow it), and reading a clock or OS
//! randomness is a clippy error (clippy.toml) everywhere but in the modules allowed below —
//! the sans-IO layers take `now` and an `RngCore` from their caller.

#[allow(clippy::disallowed_methods)] // the HTTP API: request timestamps, generated secrets
pub mod api;
pub mod config;
pub mod crypto;
#[allow(clippy::disallowed_methods)] // owns the clocks and the generators of the sans-IO layers
pub mod daemon;
pub mod ike;
#[allow(clippy::disallowed_methods)] // the OS boundary: sockets, TUN, poll deadlines
pub mod io;
pub mod ipsec;
pub mod onboard;
pub mod pool;
pub mod secret;
pub mod wire;
