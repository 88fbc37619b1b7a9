//! ipsec-server: an IKEv2 responder with a userspace ESP data plane bridged to TUN.
//!
//! Layers (see DESIGN.md §3): `wire` (codecs) → `crypto` (transforms, key schedule) →
//! `ike` (sans-IO responder) → `ipsec` (SA database, ESP) → `pool` → `io`/`daemon` (OS code).
#![deny(unsafe_code)]

pub mod api;
pub mod config;
pub mod crypto;
pub mod daemon;
pub mod ike;
pub mod io;
pub mod ipsec;
pub mod loadgen;
pub mod pool;
pub mod secret;
pub mod wire;
