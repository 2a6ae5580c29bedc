//! libxl stream views (PROTOCOL.md §3): the 16-byte header and the bodies of
//! the libxl records.
//!
//! Each view has one checked constructor (`new_checked` / `parse`); once it
//! returns `Ok`, no accessor can panic or fail. Each has an `emit` that writes
//! the bytes back from the fields (tests, `synth`). The lengths they check
//! are the record table's ([`records`](super::records)).

use serde::Serialize;

use super::detect::LIBXL_IDENT;
use super::records::LibxlType;
use super::wire::{be_u32, be_u64, le_u32, BodyError};

/// "LibxlFmt", big-endian.
pub const IDENT: u64 = u64::from_be_bytes(*LIBXL_IDENT);
pub const HEADER_LEN: usize = 16;

/// Byte offsets within the header (all fields big-endian).
pub mod field {
    use std::ops::Range;
    pub const IDENT: Range<usize> = 0..8;
    pub const VERSION: Range<usize> = 8..12;
    pub const OPTIONS: Range<usize> = 12..16;
}
/// Header option bit 0: big-endian stream.
pub const OPTION_BIG_ENDIAN: u32 = 1 << 0;
/// Header option bit 1: converted from a legacy stream.
pub const OPTION_LEGACY: u32 = 1 << 1;

/// The libxl stream header (all fields big-endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Header {
    pub version: u32,
    pub options: u32,
}

impl Header {
    /// `None` if `buf` is short or does not start with "LibxlFmt".
    pub fn parse(buf: &[u8]) -> Option<Header> {
        if buf.len() < HEADER_LEN || be_u64(buf, 0) != IDENT {
            return None;
        }
        Some(Header {
            version: be_u32(buf, field::VERSION.start),
            options: be_u32(buf, field::OPTIONS.start),
        })
    }

    /// Writes the 16 header bytes.
    pub fn emit(&self, out: &mut [u8; HEADER_LEN]) {
        out[field::IDENT].copy_from_slice(LIBXL_IDENT);
        out[field::VERSION].copy_from_slice(&self.version.to_be_bytes());
        out[field::OPTIONS].copy_from_slice(&self.options.to_be_bytes());
    }
}

/// CHECKPOINT_STATE control ids (COLO).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum ControlId {
    New,
    SvmSuspended,
    SvmReady,
    SvmResumed,
    Unknown(u32),
}

impl ControlId {
    pub fn from_u32(v: u32) -> Self {
        match v {
            0 => ControlId::New,
            1 => ControlId::SvmSuspended,
            2 => ControlId::SvmReady,
            3 => ControlId::SvmResumed,
            v => ControlId::Unknown(v),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ControlId::New => "NEW",
            ControlId::SvmSuspended => "SVM_SUSPENDED",
            ControlId::SvmReady => "SVM_READY",
            ControlId::SvmResumed => "SVM_RESUMED",
            ControlId::Unknown(_) => "UNKNOWN",
        }
    }

    pub fn to_u32(self) -> u32 {
        match self {
            ControlId::New => 0,
            ControlId::SvmSuspended => 1,
            ControlId::SvmReady => 2,
            ControlId::SvmResumed => 3,
            ControlId::Unknown(v) => v,
        }
    }
}

/// CHECKPOINT_STATE body: u32 control_id; body_length 4 on the wire, 8 accepted.
pub struct CheckpointState<'a>(&'a [u8]);

impl<'a> CheckpointState<'a> {
    pub fn new_checked(body: &'a [u8]) -> Result<Self, BodyError> {
        let length = LibxlType::CheckpointState.length();
        if !length.allows_len(body.len()) {
            return Err(BodyError::length(length.expected(), body.len()));
        }
        Ok(CheckpointState(body))
    }

    pub fn control_id(&self) -> ControlId {
        ControlId::from_u32(le_u32(self.0, 0))
    }

    /// Appends the body libxl writes: the control id alone (body_length 4).
    pub fn emit(control_id: ControlId, out: &mut Vec<u8>) {
        out.extend_from_slice(&control_id.to_u32().to_le_bytes());
    }
}

/// Emulator ids of EMULATOR_XENSTORE_DATA and EMULATOR_CONTEXT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum EmulatorId {
    Unknown,
    QemuTraditional,
    QemuUpstream,
    Other(u32),
}

impl EmulatorId {
    pub fn from_u32(v: u32) -> Self {
        match v {
            0 => EmulatorId::Unknown,
            1 => EmulatorId::QemuTraditional,
            2 => EmulatorId::QemuUpstream,
            v => EmulatorId::Other(v),
        }
    }

    pub fn to_u32(self) -> u32 {
        match self {
            EmulatorId::Unknown => 0,
            EmulatorId::QemuTraditional => 1,
            EmulatorId::QemuUpstream => 2,
            EmulatorId::Other(v) => v,
        }
    }

    pub fn name(self) -> String {
        match self {
            EmulatorId::Unknown => "unknown".into(),
            EmulatorId::QemuTraditional => "qemu-traditional".into(),
            EmulatorId::QemuUpstream => "qemu-upstream".into(),
            EmulatorId::Other(v) => format!("id {v}"),
        }
    }
}

/// The 8 bytes that open both emulator records.
const EMULATOR_PREFIX: usize = 8;

fn emit_emulator_prefix(emulator: EmulatorId, index: u32, out: &mut Vec<u8>) {
    out.extend_from_slice(&emulator.to_u32().to_le_bytes());
    out.extend_from_slice(&index.to_le_bytes());
}

/// EMULATOR_XENSTORE_DATA: u32 emulator_id, u32 index, NUL-terminated strings.
pub struct EmulatorXenstoreData<'a>(&'a [u8]);

impl<'a> EmulatorXenstoreData<'a> {
    pub fn new_checked(body: &'a [u8]) -> Result<Self, BodyError> {
        if body.len() < EMULATOR_PREFIX {
            return Err(BodyError::length("at least 8", body.len()));
        }
        Ok(EmulatorXenstoreData(body))
    }

    pub fn emulator_id(&self) -> EmulatorId {
        EmulatorId::from_u32(le_u32(self.0, 0))
    }

    pub fn index(&self) -> u32 {
        le_u32(self.0, 4)
    }

    /// The NUL-terminated strings in order (a last unterminated one included).
    pub fn strings(&self) -> impl Iterator<Item = &'a [u8]> {
        let data = &self.0[EMULATOR_PREFIX..];
        let data = data.strip_suffix(&[0]).unwrap_or(data);
        data.split(|&b| b == 0).filter(move |_| !data.is_empty())
    }

    /// Whether the string area ends with a NUL and holds whole key/value pairs.
    pub fn well_formed(&self) -> bool {
        let data = &self.0[EMULATOR_PREFIX..];
        data.is_empty() || (data.ends_with(&[0]) && self.strings().count() % 2 == 0)
    }

    /// Appends a body: the prefix, then each key and value NUL-terminated.
    pub fn emit(emulator: EmulatorId, index: u32, pairs: &[(&[u8], &[u8])], out: &mut Vec<u8>) {
        emit_emulator_prefix(emulator, index, out);
        for (key, value) in pairs {
            for s in [key, value] {
                out.extend_from_slice(s);
                out.push(0);
            }
        }
    }
}

/// EMULATOR_CONTEXT: u32 emulator_id, u32 index, opaque device-model blob.
pub struct EmulatorContext<'a>(&'a [u8]);

/// QEMU's savevm magic "QEVM", big-endian.
pub const QEMU_VM_FILE_MAGIC: u32 = 0x5145_564d;

impl<'a> EmulatorContext<'a> {
    pub fn new_checked(body: &'a [u8]) -> Result<Self, BodyError> {
        if body.len() < EMULATOR_PREFIX {
            return Err(BodyError::length("at least 8", body.len()));
        }
        Ok(EmulatorContext(body))
    }

    pub fn emulator_id(&self) -> EmulatorId {
        EmulatorId::from_u32(le_u32(self.0, 0))
    }

    pub fn index(&self) -> u32 {
        le_u32(self.0, 4)
    }

    pub fn blob(&self) -> &'a [u8] {
        &self.0[EMULATOR_PREFIX..]
    }

    /// QEMU's savevm format version when the blob starts with "QEVM".
    pub fn qemu_version(&self) -> Option<u32> {
        let blob = self.blob();
        (blob.len() >= 8 && be_u32(blob, 0) == QEMU_VM_FILE_MAGIC).then(|| be_u32(blob, 4))
    }

    /// Appends a body: the prefix, then the device-model blob.
    pub fn emit(emulator: EmulatorId, index: u32, blob: &[u8], out: &mut Vec<u8>) {
        emit_emulator_prefix(emulator, index, out);
        out.extend_from_slice(blob);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_from_reference_bytes() {
        let bytes = [
            0x4c, 0x69, 0x62, 0x78, 0x6c, 0x46, 0x6d, 0x74, 0, 0, 0, 2, 0, 0, 0, 0,
        ];
        assert_eq!(&bytes[..8], b"LibxlFmt");
        let h = Header::parse(&bytes).unwrap();
        assert_eq!(h.version, 2);
        assert_eq!(h.options, 0);
        assert!(Header::parse(&bytes[..15]).is_none());
        assert!(Header::parse(&[0u8; 16]).is_none());
    }

    #[test]
    fn checkpoint_state_lengths() {
        let cs = CheckpointState::new_checked(&[2, 0, 0, 0]).unwrap();
        assert_eq!(cs.control_id(), ControlId::SvmReady);
        let cs = CheckpointState::new_checked(&[3, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!(cs.control_id(), ControlId::SvmResumed);
        assert_eq!(
            CheckpointState::new_checked(&[0; 5]).err(),
            Some(BodyError::length("4 or 8", 5))
        );
        assert_eq!(ControlId::from_u32(9).name(), "UNKNOWN");
    }

    #[test]
    fn xenstore_pairs() {
        let mut body = vec![2, 0, 0, 0, 0, 0, 0, 0];
        body.extend_from_slice(b"physmap/f0000000/start_addr\0f0000000\0k2\0\0");
        let x = EmulatorXenstoreData::new_checked(&body).unwrap();
        assert_eq!(x.emulator_id(), EmulatorId::QemuUpstream);
        let s: Vec<&[u8]> = x.strings().collect();
        assert_eq!(
            s,
            vec![&b"physmap/f0000000/start_addr"[..], b"f0000000", b"k2", b""]
        );
        assert!(x.well_formed());
        let odd = [2, 0, 0, 0, 0, 0, 0, 0, b'k', 0];
        assert!(!EmulatorXenstoreData::new_checked(&odd)
            .unwrap()
            .well_formed());
        let empty = [1, 0, 0, 0, 0, 0, 0, 0];
        let e = EmulatorXenstoreData::new_checked(&empty).unwrap();
        assert_eq!(e.strings().count(), 0);
        assert!(e.well_formed());
        assert!(EmulatorXenstoreData::new_checked(&[0; 7]).is_err());
    }

    #[test]
    fn emulator_context_qevm() {
        let body = [
            2, 0, 0, 0, 1, 0, 0, 0, b'Q', b'E', b'V', b'M', 0, 0, 0, 3, 9,
        ];
        let c = EmulatorContext::new_checked(&body).unwrap();
        assert_eq!(c.emulator_id(), EmulatorId::QemuUpstream);
        assert_eq!(c.index(), 1);
        assert_eq!(c.qemu_version(), Some(3));
        assert_eq!(c.blob().len(), 9);
        let raw = [1, 0, 0, 0, 0, 0, 0, 0, 1, 2];
        assert_eq!(
            EmulatorContext::new_checked(&raw).unwrap().qemu_version(),
            None
        );
    }

    // ---- emit: construct from fields, compare with the reference bytes ----

    #[test]
    fn header_emit_and_parse() {
        let bytes = [
            b'L', b'i', b'b', b'x', b'l', b'F', b'm', b't', 0, 0, 0, 2, 0, 0, 0, 2,
        ];
        let h = Header {
            version: 2,
            options: OPTION_LEGACY,
        };
        let mut out = [0xAA; HEADER_LEN];
        h.emit(&mut out);
        assert_eq!(out, bytes);
        assert_eq!(Header::parse(&out), Some(h));
        assert_eq!(IDENT, 0x4c69_6278_6c46_6d74);
    }

    #[test]
    fn checkpoint_state_record_is_sixteen_bytes() {
        // PROTOCOL.md §3: 05 00 00 00 04 00 00 00 cc 00 00 00 00 00 00 00.
        let mut body = Vec::new();
        CheckpointState::emit(ControlId::SvmSuspended, &mut body);
        assert_eq!(body, [1, 0, 0, 0]);
        let mut record = Vec::new();
        crate::decode::wire::emit_record(5, &body, &mut record);
        assert_eq!(record, [5, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
        let cs = CheckpointState::new_checked(&record[8..12]).unwrap();
        assert_eq!(cs.control_id(), ControlId::SvmSuspended);
        for id in [0, 1, 2, 3, 7] {
            assert_eq!(ControlId::from_u32(id).to_u32(), id);
        }
        // Impossible lengths: the record table allows 4 or 8 only.
        for n in [0, 3, 12, 16] {
            assert_eq!(
                CheckpointState::new_checked(&vec![0; n]).err(),
                Some(BodyError::length("4 or 8", n))
            );
        }
    }

    #[test]
    fn xenstore_emit() {
        let mut body = Vec::new();
        EmulatorXenstoreData::emit(
            EmulatorId::QemuUpstream,
            0,
            &[(b"k1", b"v1"), (b"key", b"")],
            &mut body,
        );
        assert_eq!(
            body,
            [
                2, 0, 0, 0, 0, 0, 0, 0, // emulator_id, index
                b'k', b'1', 0, b'v', b'1', 0, b'k', b'e', b'y', 0, 0,
            ]
        );
        let x = EmulatorXenstoreData::new_checked(&body).unwrap();
        assert!(x.well_formed());
        let s: Vec<&[u8]> = x.strings().collect();
        assert_eq!(s, vec![&b"k1"[..], b"v1", b"key", b""]);
    }

    #[test]
    fn emulator_context_emit() {
        let mut body = Vec::new();
        EmulatorContext::emit(EmulatorId::QemuTraditional, 7, b"QEVM\0\0\0\x03", &mut body);
        assert_eq!(
            body,
            [1, 0, 0, 0, 7, 0, 0, 0, b'Q', b'E', b'V', b'M', 0, 0, 0, 3]
        );
        let c = EmulatorContext::new_checked(&body).unwrap();
        assert_eq!(
            (c.emulator_id(), c.index(), c.qemu_version()),
            (EmulatorId::QemuTraditional, 7, Some(3))
        );
        for id in [0, 1, 2, 9] {
            assert_eq!(EmulatorId::from_u32(id).to_u32(), id);
        }
        assert!(EmulatorContext::new_checked(&body[..7]).is_err());
    }
}
