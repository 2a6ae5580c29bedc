//! The record table: every record type of both layers (PROTOCOL.md §3 for
//! libxl, §4 for libxc) with its number, its spec name, the body lengths the
//! format allows, whether it can anchor a re-synchronisation, and where it
//! travels (forward stream or COLO back channel, PV or HVM guests).
//!
//! This is the one place these facts are written. Everything that needs one
//! reads it here: the type names ([`LibxcType::name`]), the decoder's check
//! that a header's body_length is possible and the reason it gives
//! ([`RecordSpec::impossible_length`]), the hunt's cheaper test of whether a
//! header is worth waiting for ([`RecordSpec::plausible_length`]), the
//! recognition of back-channel records ([`back_channel_header`]), the PV/HVM
//! and static-data checks, and the fixed sizes of the body views in `libxl`
//! and `libxc`.
//!
//! Nothing here can fail: unknown type numbers are [`LibxcType::Unknown`] /
//! [`LibxlType::Unknown`] and have no [`RecordSpec`].

use std::fmt;

use super::wire::{Layer, RecordHeader, MAX_RECORD_BODY, OPTIONAL_BIT};

/// Body lengths a record type allows. A header that claims any other length
/// is corrupt: trusting it would swallow the records after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Length {
    /// The format sets no bound below the 128 MiB record limit.
    Any,
    Exactly(u32),
    /// Either of two lengths (CHECKPOINT_STATE: libxl writes 4, the spec draws 8).
    Either(u32, u32),
    /// From `min` to `max` bytes, both included.
    Range {
        min: u32,
        max: u32,
    },
    /// `head` bytes, then whole `size`-byte entries; `max_len` bytes in all at most.
    Entries {
        head: u32,
        size: u32,
        max_len: u32,
    },
}

impl Length {
    /// At least `min` bytes.
    pub const fn at_least(min: u32) -> Length {
        Length::Range { min, max: u32::MAX }
    }

    /// At most `max` bytes.
    pub const fn at_most(max: u32) -> Length {
        Length::Range { min: 0, max }
    }

    /// `len` is allowed.
    pub const fn allows(self, len: u32) -> bool {
        match self {
            Length::Entries { max_len, .. } if len > max_len => false,
            Length::Range { max, .. } if len > max => false,
            _ => self.fits_shape(len),
        }
    }

    /// `allows` for a body held in memory.
    pub fn allows_len(self, len: usize) -> bool {
        u32::try_from(len).is_ok_and(|len| self.allows(len))
    }

    /// `len` has the body's shape (fixed sizes, whole entries, minimum),
    /// whatever the caps; the hunt's window bounds what it reads instead.
    pub const fn fits_shape(self, len: u32) -> bool {
        match self {
            Length::Any => true,
            Length::Exactly(n) => len == n,
            Length::Either(a, b) => len == a || len == b,
            Length::Range { min, .. } => len >= min,
            Length::Entries { head, size, .. } => {
                len >= head && matches!((len - head).checked_rem(size), Some(0))
            }
        }
    }

    /// The fixed bytes before any entries: `Entries`' head, `Range`'s
    /// minimum, `Exactly`'s length.
    pub const fn head(self) -> u32 {
        match self {
            Length::Entries { head, .. } => head,
            Length::Range { min, .. } => min,
            Length::Exactly(n) => n,
            Length::Any | Length::Either(..) => 0,
        }
    }

    /// `Entries`' entry size; 0 for the other rules.
    pub const fn entry_size(self) -> u32 {
        match self {
            Length::Entries { size, .. } => size,
            _ => 0,
        }
    }

    /// What a body view expects, in its [`BodyError`](super::wire::BodyError):
    /// "24", "4 or 8", "at least 8", "a multiple of 24".
    pub fn expected(self) -> String {
        match self {
            Length::Any => "any length".into(),
            Length::Exactly(n) => n.to_string(),
            Length::Either(a, b) => format!("{a} or {b}"),
            Length::Range { min, .. } => format!("at least {min}"),
            Length::Entries { head: 0, size, .. } => format!("a multiple of {size}"),
            Length::Entries { head, size, .. } => format!("{head} + a multiple of {size}"),
        }
    }
}

/// What a record is worth to the hunt for a record boundary
/// (re-synchronisation, see `decoder::resync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnchorRole {
    /// Never taken as a boundary: END is eight zero bytes, found everywhere;
    /// TOOLSTACK is opaque.
    Never,
    /// Its body is checked (layout, values, what follows it) and it is
    /// accepted on its own. EMULATOR_CONTEXT without QEMU's magic and an
    /// empty dirty list fall back to [`AnchorRole::Chained`].
    SelfChecking,
    /// Its framing is plausible only: accepted when the records after it
    /// lead to a self-checking one.
    Chained,
}

/// Which direction of a migration carries a record (PROTOCOL.md §1, §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The migration stream, sender to receiver.
    Forward,
    /// The COLO back channel, secondary to primary (headerless).
    BackChannel,
    /// Both: CHECKPOINT_STATE NEW goes forward, the SVM_* states come back.
    Both,
}

impl Stream {
    pub const fn on_back_channel(self) -> bool {
        matches!(self, Stream::BackChannel | Stream::Both)
    }

    pub const fn on_forward(self) -> bool {
        matches!(self, Stream::Forward | Stream::Both)
    }
}

/// Guests whose streams carry a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guest {
    Any,
    /// x86 PV only.
    Pv,
    /// x86 HVM only.
    Hvm,
}

/// One row of the record table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordSpec {
    pub layer: Layer,
    pub number: u32,
    /// The PROTOCOL.md name.
    pub name: &'static str,
    pub length: Length,
    /// Why another length is impossible, as the diagnostic says it.
    pub why: &'static str,
    pub anchor: AnchorRole,
    /// What the hunt asks of the length on top of `length`'s shape before it
    /// waits for the body (a candidate that can never be evidence must not
    /// hold the hunt back).
    pub hunt: Length,
    pub stream: Stream,
    pub guest: Guest,
    /// Static data: must come before STATIC_DATA_END (libxc v3).
    pub static_data: bool,
}

impl RecordSpec {
    /// Why a header of this type cannot claim `len` bytes; `None` if it can.
    pub fn impossible_length(&self, len: u32) -> Option<&'static str> {
        (!self.length.allows(len)).then_some(self.why)
    }

    /// Whether a header of this type claiming `len` bytes can be evidence of
    /// a record boundary on the forward stream.
    pub fn plausible_length(&self, len: u32) -> bool {
        self.anchor != AnchorRole::Never
            && self.stream.on_forward()
            && self.length.fits_shape(len)
            && self.hunt.allows(len)
    }
}

const MIB: u32 = 1 << 20;
/// The most HVM parameters a record is believed to hold (under a hundred exist).
pub const MAX_HVM_PARAMS: u32 = 4096;

// Short names for the table's columns.
use AnchorRole::{Chained, Never, SelfChecking};
use Stream::{BackChannel, Both, Forward};
const ANY: Length = Length::Any;
const EMPTY: Length = Length::Exactly(0);
const IS_EMPTY: &str = "that record is empty";
const fn exactly(n: u32) -> Length {
    Length::Exactly(n)
}
const fn entries(head: u32, size: u32, max_len: u32) -> Length {
    Length::Entries {
        head,
        size,
        max_len,
    }
}
const fn at_least(n: u32) -> Length {
    Length::at_least(n)
}
const fn at_most(n: u32) -> Length {
    Length::at_most(n)
}

macro_rules! record_table {
    ($(#[$meta:meta])* $enum:ident, $layer:expr, $table:ident {
        $($variant:ident = $value:literal, $name:literal, $length:expr, $why:expr,
          $anchor:ident, $hunt:expr, $stream:ident, $guest:ident, $static:literal;)*
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $enum {
            $($variant,)*
            /// A type this tool does not know; bit 31 tells whether it is optional.
            Unknown(u32),
        }

        /// The rows of this layer, in type-number order.
        pub const $table: &[RecordSpec] = &[$(RecordSpec {
            layer: $layer,
            number: $value,
            name: $name,
            length: $length,
            why: $why,
            anchor: $anchor,
            hunt: $hunt,
            stream: $stream,
            guest: Guest::$guest,
            static_data: $static,
        },)*];

        impl $enum {
            /// Every known type, in type-number order.
            pub const KNOWN: &'static [$enum] = &[$($enum::$variant,)*];

            pub fn from_u32(value: u32) -> Self {
                match value {
                    $($value => $enum::$variant,)*
                    other => $enum::Unknown(other),
                }
            }

            pub const fn to_u32(self) -> u32 {
                match self {
                    $($enum::$variant => $value,)*
                    $enum::Unknown(other) => other,
                }
            }

            /// This type's row of the table; `None` for an unknown type.
            /// (The rows are dense: a row's index is its type number.)
            pub const fn spec(self) -> Option<&'static RecordSpec> {
                if let $enum::Unknown(_) = self {
                    return None;
                }
                let i = self.to_u32() as usize;
                if i < $table.len() {
                    Some(&$table[i])
                } else {
                    None
                }
            }

            /// This type's length rule ([`Length::Any`] for an unknown type).
            pub const fn length(self) -> Length {
                match self.spec() {
                    Some(s) => s.length,
                    None => Length::Any,
                }
            }

            /// The PROTOCOL.md name (`PAGE_DATA`), or `UNKNOWN_OPTIONAL` /
            /// `UNKNOWN_MANDATORY` for types the tool does not know.
            pub fn name(self) -> &'static str {
                match self.spec() {
                    Some(s) => s.name,
                    None if self.to_u32() & OPTIONAL_BIT != 0 => "UNKNOWN_OPTIONAL",
                    None => "UNKNOWN_MANDATORY",
                }
            }

            pub const fn is_known(self) -> bool {
                !matches!(self, $enum::Unknown(_))
            }
        }

        impl fmt::Display for $enum {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $enum::Unknown(v) => write!(f, "{}({:#010x})", self.name(), v),
                    _ => f.write_str(self.name()),
                }
            }
        }
    };
}

// Columns: variant = number, name, length, why another length is impossible,
// anchor, what the hunt asks of the length, stream, guest, static data.

record_table! {
    /// libxl record types (PROTOCOL.md §3).
    LibxlType, Layer::Libxl, LIBXL_RECORDS {
        End                  = 0, "END",                    EMPTY, IS_EMPTY,
            Never,        ANY,           Forward,     Any, false;
        LibxcContext         = 1, "LIBXC_CONTEXT",          EMPTY, IS_EMPTY,
            SelfChecking, ANY,           Forward,     Any, false;
        EmulatorXenstoreData = 2, "EMULATOR_XENSTORE_DATA", at_most(MIB), "xenstore data is far below 1 MiB",
            Chained,      at_least(8),   Forward,     Any, false;
        EmulatorContext      = 3, "EMULATOR_CONTEXT",       ANY, "",
            SelfChecking, at_least(8),   Forward,     Any, false;
        CheckpointEnd        = 4, "CHECKPOINT_END",         EMPTY, IS_EMPTY,
            Chained,      ANY,           Forward,     Any, false;
        CheckpointState      = 5, "CHECKPOINT_STATE",       Length::Either(4, 8), "that record has 4 (or 8)",
            SelfChecking, ANY,           Both,        Any, false;
    }
}

record_table! {
    /// libxc record types (PROTOCOL.md §4).
    LibxcType, Layer::Libxc, LIBXC_RECORDS {
        End                    = 0x00, "END",                       EMPTY, IS_EMPTY,
            Never,        ANY,                      Forward,     Any, false;
        PageData               = 0x01, "PAGE_DATA",                 at_least(8), "that record has at least its 8-byte header",
            SelfChecking, ANY,                      Forward,     Any, false;
        X86PvInfo              = 0x02, "X86_PV_INFO",               exactly(8), "that record has 8",
            Chained,      ANY,                      Forward,     Pv,  true;
        X86PvP2mFrames         = 0x03, "X86_PV_P2M_FRAMES",         ANY, "",
            // start_pfn, end_pfn and at least one u64 frame.
            Chained,      entries(16, 8, u32::MAX), Forward,     Pv,  false;
        X86PvVcpuBasic         = 0x04, "X86_PV_VCPU_BASIC",         at_most(MIB), "a vCPU context is far below 1 MiB",
            Chained,      at_least(9),              Forward,     Pv,  false;
        X86PvVcpuExtended      = 0x05, "X86_PV_VCPU_EXTENDED",      at_most(MIB), "a vCPU context is far below 1 MiB",
            Chained,      at_least(9),              Forward,     Pv,  false;
        X86PvVcpuXsave         = 0x06, "X86_PV_VCPU_XSAVE",         at_most(MIB), "a vCPU context is far below 1 MiB",
            Chained,      at_least(9),              Forward,     Pv,  false;
        SharedInfo             = 0x07, "SHARED_INFO",               ANY, "",
            // One page; the hunt knows only x86's 4 KiB.
            Chained,      exactly(4096),            Forward,     Pv,  false;
        X86TscInfo             = 0x08, "X86_TSC_INFO",              exactly(24), "that record has 24",
            Chained,      ANY,                      Forward,     Any, false;
        HvmContext             = 0x09, "HVM_CONTEXT",               at_most(16 * MIB), "an HVM context is far below 16 MiB",
            // At least two descriptors (HEADER, END).
            SelfChecking, at_least(16),             Forward,     Hvm, false;
        HvmParams              = 0x0A, "HVM_PARAMS",                entries(8, 16, 8 + 16 * MAX_HVM_PARAMS), "that record holds 8 bytes and at most 4096 16-byte entries",
            // At least one parameter.
            SelfChecking, at_least(24),             Forward,     Hvm, false;
        Toolstack              = 0x0B, "TOOLSTACK",                 ANY, "",
            Never,        ANY,                      Forward,     Any, false;
        X86PvVcpuMsrs          = 0x0C, "X86_PV_VCPU_MSRS",          at_most(MIB), "a vCPU context is far below 1 MiB",
            Chained,      at_least(9),              Forward,     Pv,  false;
        Verify                 = 0x0D, "VERIFY",                    EMPTY, IS_EMPTY,
            Chained,      ANY,                      Forward,     Any, false;
        Checkpoint             = 0x0E, "CHECKPOINT",                EMPTY, IS_EMPTY,
            Chained,      ANY,                      Forward,     Any, false;
        CheckpointDirtyPfnList = 0x0F, "CHECKPOINT_DIRTY_PFN_LIST", entries(0, 8, u32::MAX), "that record holds 8-byte pfns",
            SelfChecking, ANY,                      BackChannel, Any, false;
        StaticDataEnd          = 0x10, "STATIC_DATA_END",           EMPTY, IS_EMPTY,
            Chained,      ANY,                      Forward,     Any, false;
        X86CpuidPolicy         = 0x11, "X86_CPUID_POLICY",          entries(0, 24, MIB), "that record holds 24-byte entries, under 1 MiB",
            Chained,      at_least(24),             Forward,     Any, true;
        X86MsrPolicy           = 0x12, "X86_MSR_POLICY",            entries(0, 16, MIB), "that record holds 16-byte entries, under 1 MiB",
            Chained,      at_least(16),             Forward,     Any, true;
    }
}

impl LibxcType {
    /// Records that carry static data: they must precede STATIC_DATA_END.
    pub fn is_static(self) -> bool {
        self.spec().is_some_and(|s| s.static_data)
    }
}

/// A record type of either layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordType {
    Libxl(LibxlType),
    Libxc(LibxcType),
}

impl RecordType {
    pub fn layer(self) -> Layer {
        match self {
            RecordType::Libxl(_) => Layer::Libxl,
            RecordType::Libxc(_) => Layer::Libxc,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            RecordType::Libxl(t) => t.name(),
            RecordType::Libxc(t) => t.name(),
        }
    }

    pub fn to_u32(self) -> u32 {
        match self {
            RecordType::Libxl(t) => t.to_u32(),
            RecordType::Libxc(t) => t.to_u32(),
        }
    }

    pub fn is_known(self) -> bool {
        match self {
            RecordType::Libxl(t) => t.is_known(),
            RecordType::Libxc(t) => t.is_known(),
        }
    }

    pub fn is_optional(self) -> bool {
        self.to_u32() & OPTIONAL_BIT != 0
    }

    /// This type's row of the record table; `None` for an unknown type.
    pub fn spec(self) -> Option<&'static RecordSpec> {
        match self {
            RecordType::Libxl(t) => t.spec(),
            RecordType::Libxc(t) => t.spec(),
        }
    }

    pub fn of(layer: Layer, value: u32) -> Option<Self> {
        match layer {
            Layer::Libxl => Some(RecordType::Libxl(LibxlType::from_u32(value))),
            Layer::Libxc => Some(RecordType::Libxc(LibxcType::from_u32(value))),
            Layer::Xl | Layer::Qemu => None,
        }
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordType::Libxl(t) => t.fmt(f),
            RecordType::Libxc(t) => t.fmt(f),
        }
    }
}

/// Every row of both layers: libxl's, then libxc's.
pub fn all() -> impl Iterator<Item = &'static RecordSpec> {
    LIBXL_RECORDS.iter().chain(LIBXC_RECORDS)
}

/// A header that can open a back-channel record (PROTOCOL.md §5: the back
/// channel has no stream header and carries only CHECKPOINT_STATE and
/// CHECKPOINT_DIRTY_PFN_LIST, whose type numbers do not collide), with the
/// layer the record belongs to. `None` if `b` is shorter than a header.
pub fn back_channel_header(b: &[u8]) -> Option<(RecordHeader, Layer)> {
    let h = RecordHeader::parse(b)?;
    let spec = all().find(|s| {
        s.stream.on_back_channel()
            && s.number == h.rtype
            && s.length.allows(h.body_length)
            && h.body_length <= MAX_RECORD_BODY
    })?;
    Some((h, spec.layer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_rows_match_their_type_numbers() {
        for t in LibxlType::KNOWN {
            let s = t.spec().unwrap();
            assert_eq!((s.layer, s.number), (Layer::Libxl, t.to_u32()));
            assert_eq!(LibxlType::from_u32(t.to_u32()), *t);
        }
        for t in LibxcType::KNOWN {
            let s = t.spec().unwrap();
            assert_eq!((s.layer, s.number), (Layer::Libxc, t.to_u32()));
            assert_eq!(LibxcType::from_u32(t.to_u32()), *t);
        }
        for (i, s) in LIBXL_RECORDS.iter().enumerate() {
            assert_eq!(s.number as usize, i, "rows are indexed by type number");
        }
        for (i, s) in LIBXC_RECORDS.iter().enumerate() {
            assert_eq!(s.number as usize, i, "rows are indexed by type number");
        }
        assert_eq!(LIBXL_RECORDS.len(), 6);
        assert_eq!(LIBXC_RECORDS.len(), 0x13);
        assert_eq!(LibxcType::Unknown(0x13).spec(), None);
        // Every bounded length says why.
        for s in all() {
            assert_eq!(s.length == Length::Any, s.why.is_empty(), "{}", s.name);
        }
    }

    #[test]
    fn names_follow_the_reference() {
        assert_eq!(LibxcType::from_u32(1).name(), "PAGE_DATA");
        assert_eq!(LibxcType::from_u32(0x12).name(), "X86_MSR_POLICY");
        assert_eq!(LibxlType::from_u32(5).name(), "CHECKPOINT_STATE");
        assert_eq!(LibxcType::from_u32(0x8000_0042).name(), "UNKNOWN_OPTIONAL");
        assert_eq!(LibxcType::from_u32(0x42).name(), "UNKNOWN_MANDATORY");
        assert_eq!(
            LibxcType::from_u32(0x42).to_string(),
            "UNKNOWN_MANDATORY(0x00000042)"
        );
        assert_eq!(
            RecordType::of(Layer::Libxc, 0x0A).unwrap().to_string(),
            "HVM_PARAMS"
        );
        assert_eq!(RecordType::of(Layer::Xl, 0), None);
    }

    #[test]
    fn hvm_params_length_rule() {
        let s = LibxcType::HvmParams.spec().unwrap();
        // u32 count, u32 reserved, count x {u64 index, u64 value}.
        for ok in [8, 24, 40, 8 + 16 * 4096] {
            assert_eq!(s.impossible_length(ok), None, "{ok}");
        }
        for bad in [0, 7, 9, 23, 8 + 16 * 4097] {
            assert_eq!(
                s.impossible_length(bad),
                Some("that record holds 8 bytes and at most 4096 16-byte entries"),
                "{bad}"
            );
        }
        // The hunt wants at least one parameter and ignores the cap.
        assert!(!s.plausible_length(8));
        assert!(s.plausible_length(24));
        assert!(!s.plausible_length(30));
        assert!(s.plausible_length(8 + 16 * 5000));
    }

    #[test]
    fn lengths_of_fixed_records() {
        let tsc = LibxcType::X86TscInfo.spec().unwrap();
        assert_eq!(tsc.impossible_length(24), None);
        assert_eq!(tsc.impossible_length(16), Some("that record has 24"));
        let cs = LibxlType::CheckpointState.spec().unwrap();
        assert!(cs.length.allows(4) && cs.length.allows(8) && !cs.length.allows(16));
        let empty = LibxcType::Checkpoint.spec().unwrap();
        assert_eq!(empty.impossible_length(8), Some("that record is empty"));
        let cpuid = LibxcType::X86CpuidPolicy.spec().unwrap();
        assert!(cpuid.length.allows(1_048_560) && !cpuid.length.allows(1_048_584));
        assert!(!cpuid.plausible_length(0) && cpuid.plausible_length(48));
        let p2m = LibxcType::X86PvP2mFrames.spec().unwrap();
        assert!(p2m.length.allows(3));
        assert!(!p2m.plausible_length(8) && p2m.plausible_length(16) && !p2m.plausible_length(20));
        let shared = LibxcType::SharedInfo.spec().unwrap();
        assert!(shared.plausible_length(4096) && !shared.plausible_length(8192));
    }

    #[test]
    fn what_the_hunt_never_takes() {
        for t in [LibxcType::End, LibxcType::Toolstack] {
            assert!(!t.spec().unwrap().plausible_length(0));
        }
        assert!(!LibxlType::End.spec().unwrap().plausible_length(0));
        // A dirty pfn list belongs on the back channel, not forward.
        assert!(!LibxcType::CheckpointDirtyPfnList
            .spec()
            .unwrap()
            .plausible_length(16));
    }

    #[test]
    fn back_channel_headers() {
        assert_eq!(
            back_channel_header(&[5, 0, 0, 0, 4, 0, 0, 0]),
            Some((
                RecordHeader {
                    rtype: 5,
                    body_length: 4
                },
                Layer::Libxl
            ))
        );
        assert_eq!(
            back_channel_header(&[0x0f, 0, 0, 0, 16, 0, 0, 0]).map(|(_, l)| l),
            Some(Layer::Libxc)
        );
        // A dirty list of whole pfns only; no other type; 8 bytes needed.
        assert_eq!(back_channel_header(&[0x0f, 0, 0, 0, 12, 0, 0, 0]), None);
        assert_eq!(back_channel_header(&[5, 0, 0, 0, 16, 0, 0, 0]), None);
        assert_eq!(back_channel_header(&[1, 0, 0, 0, 8, 0, 0, 0]), None);
        assert_eq!(back_channel_header(&[5, 0, 0, 0]), None);
        assert_eq!(
            back_channel_header(&[0x0f, 0, 0, 0, 0, 0, 0, 0x10]),
            None,
            "over the 128 MiB record limit"
        );
    }

    #[test]
    fn static_records() {
        let st: Vec<_> = LibxcType::KNOWN.iter().filter(|t| t.is_static()).collect();
        assert_eq!(
            st,
            [
                &LibxcType::X86PvInfo,
                &LibxcType::X86CpuidPolicy,
                &LibxcType::X86MsrPolicy
            ]
        );
    }
}
