//! Decoding of QEMU migration streams (docs/PROTOCOL.md §9): precopy
//! migration, the return path, COLO and multifd channels, as QEMU 7.2 writes
//! them.
//!
//! | module | what |
//! |---|---|
//! | [`wire`] | the magics, section, command, RAM-flag, COLO and return-path tables, with `emit` helpers |
//! | [`info`] | what an item holds, its summary and detail tree |
//! | [`decoder`] | the push decoder, one per direction |

pub mod decoder;
pub mod info;
pub mod wire;

pub use decoder::QemuDecoder;
pub use info::{QemuInfo, QemuKind};
pub use wire::ColoMessage;

#[cfg(test)]
mod tests;
