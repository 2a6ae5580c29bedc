//! libxl stream views (PROTOCOL.md section 3): the 16-byte header and the
//! bodies of the libxl records.
//!
//! Each view has one checked constructor (`new_checked` / `parse`); once it
//! returns `Ok`, no accessor can panic or fail.

use serde::Serialize;

use super::wire::{be_u32, be_u64, le_u32, BodyError};

/// "LibxlFmt", big-endian.
pub const IDENT: u64 = 0x4c69_6278_6c46_6d74;
pub const HEADER_LEN: usize = 16;
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
            version: be_u32(buf, 8),
            options: be_u32(buf, 12),
        })
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
        match body.len() {
            4 | 8 => Ok(CheckpointState(body)),
            n => Err(BodyError::length("4 or 8", n)),
        }
    }

    pub fn control_id(&self) -> ControlId {
        ControlId::from_u32(le_u32(self.0, 0))
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
}
