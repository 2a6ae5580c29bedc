//! migscope: a Wireshark-style inspector for Xen migration traffic.
//!
//! Data flows one way through the modules: `decode` (xl preamble, libxl,
//! libxc, the layer state machine) feeds the later stages; `synth` generates
//! streams for tests, demos and benchmarks. See `docs/ARCHITECTURE.md`.

#![forbid(unsafe_code)]

pub mod capture;
pub mod cli;
pub mod decode;
pub mod model;
pub mod monitor;
pub mod present;
pub mod report;
pub mod session;
#[cfg(feature = "synth")]
pub mod synth;
pub mod tcp;
pub mod ui;
