//! One direction's decoder, of either hypervisor family: the interface the
//! session stage drives (push bytes, report gaps, finish), whatever the
//! stream is.

use serde::Serialize;

use super::qemu::QemuDecoder;
use super::{Decoder, Direction, Event};

/// The hypervisor family a migration stream belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// Xen's migration stream v2 (xl, libxl, libxc; COLO and Remus).
    #[default]
    Xen,
    /// QEMU's migration stream (precopy, return path, COLO, multifd).
    Qemu,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::Xen => "xen",
            Family::Qemu => "qemu",
        }
    }
}

/// A decoder of one direction of a session.
// Both decoders are large and live once per session direction.
#[allow(clippy::large_enum_variant)]
pub enum StreamDecoder {
    Xen(Decoder),
    Qemu(QemuDecoder),
}

impl StreamDecoder {
    /// A decoder at the start of a direction.
    pub fn new(family: Family, dir: Direction) -> Self {
        match family {
            Family::Xen => StreamDecoder::Xen(Decoder::new(dir)),
            Family::Qemu => StreamDecoder::Qemu(QemuDecoder::new(dir)),
        }
    }

    /// A decoder for a direction whose start was not captured; `offset` is
    /// the stream offset of the next byte.
    pub fn mid_stream(family: Family, dir: Direction, offset: u64) -> Self {
        match family {
            Family::Xen => StreamDecoder::Xen(Decoder::mid_stream(dir, offset)),
            Family::Qemu => StreamDecoder::Qemu(QemuDecoder::mid_stream(dir, offset)),
        }
    }

    pub fn family(&self) -> Family {
        match self {
            StreamDecoder::Xen(_) => Family::Xen,
            StreamDecoder::Qemu(_) => Family::Qemu,
        }
    }

    pub fn offset(&self) -> u64 {
        match self {
            StreamDecoder::Xen(d) => d.offset(),
            StreamDecoder::Qemu(d) => d.offset(),
        }
    }

    pub fn push(&mut self, data: &[u8], out: &mut Vec<Event>) {
        match self {
            StreamDecoder::Xen(d) => d.push(data, out),
            StreamDecoder::Qemu(d) => d.push(data, out),
        }
    }

    pub fn gap(&mut self, len: u64, out: &mut Vec<Event>) {
        match self {
            StreamDecoder::Xen(d) => d.gap(len, out),
            StreamDecoder::Qemu(d) => d.gap(len, out),
        }
    }

    pub fn finish(&mut self, out: &mut Vec<Event>) {
        match self {
            StreamDecoder::Xen(d) => d.finish(out),
            StreamDecoder::Qemu(d) => d.finish(out),
        }
    }

    pub fn buffered_capacity(&self) -> usize {
        match self {
            StreamDecoder::Xen(d) => d.buffered_capacity(),
            StreamDecoder::Qemu(d) => d.buffered_capacity(),
        }
    }
}

impl From<Decoder> for StreamDecoder {
    fn from(d: Decoder) -> Self {
        StreamDecoder::Xen(d)
    }
}
