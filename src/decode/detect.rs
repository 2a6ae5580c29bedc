//! The stream detector: what the first 8 bytes of a byte stream are
//! (PROTOCOL.md §1 for the kinds of sender, §2-§4 for their magics).
//!
//! The magic numbers that open each kind of stream are written here and
//! nowhere else; the views (`xl::SAVE_MAGIC`, `libxl::IDENT`,
//! `libxc::MARKER`, `libxc::IMAGE_ID`) are defined from them. [`sniff`] is the
//! one test of a stream's first bytes: the pipeline's [`classify`] (which
//! drops connections that are not migrations), the decoder at the start of a
//! stream, and the decoder after the xl save-file header all use it.

use super::records::back_channel_header;
use super::xl;

/// Magic of the xl save-file header (PROTOCOL.md §2), 32 bytes:
/// "Xen saved domain, xl format", 0x0a, 0x20, 0x00, 0x20, 0x0d.
pub const XL_SAVE_MAGIC: &[u8; 32] = b"Xen saved domain, xl format\n \0 \r";

/// The libxl stream header's ident (PROTOCOL.md §3), big-endian u64.
pub const LIBXL_IDENT: &[u8; 8] = b"LibxlFmt";

/// The libxc image header's marker (PROTOCOL.md §4), big-endian u64 all ones.
pub const LIBXC_MARKER: &[u8; 8] = &[0xff; 8];

/// The libxc image header's id after the marker, big-endian u32.
pub const LIBXC_IMAGE_ID: &[u8; 4] = b"XENF";

/// How a libxc image header starts: the marker, then the id.
pub const LIBXC_IMAGE_START: [u8; 12] = {
    let mut start = [0u8; 12];
    let mut i = 0;
    while i < start.len() {
        start[i] = if i < 8 {
            LIBXC_MARKER[i]
        } else {
            LIBXC_IMAGE_ID[i - 8]
        };
        i += 1;
    }
    start
};

/// How an SSH server or client opens a connection (xl's default transport).
pub const SSH_BANNER: &[u8; 4] = b"SSH-";

/// Bytes [`classify`] and [`sniff`] need to decide.
pub const NEEDED: usize = 8;

/// What the first bytes of one direction of a connection are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Opening {
    /// xl save-file header: the forward direction of `xl migrate`/`xl remus`
    /// (or an xl save file).
    XlHeader,
    /// The xl receiver's banner: the reverse direction of `xl migrate`.
    XlBanner,
    /// "LibxlFmt": a bare libxl stream, forward.
    Libxl,
    /// The libxc marker (0xff x 8): a bare libxc stream, forward.
    Libxc,
    /// A COLO back-channel record (CHECKPOINT_STATE or a dirty pfn list).
    BackChannel,
    /// An SSH banner: xl's default, encrypted transport.
    Ssh,
    /// "QEVM", version 3: a QEMU migration stream, forward.
    Qemu,
    /// A QEMU multifd channel (its magic, version 1), forward.
    QemuMultifd,
    /// Anything else: not the start of a migration stream.
    Other,
}

impl Opening {
    /// The direction carrying this opening is the migration stream itself.
    pub fn is_forward(self) -> bool {
        matches!(
            self,
            Opening::XlHeader
                | Opening::Libxl
                | Opening::Libxc
                | Opening::Qemu
                | Opening::QemuMultifd
        )
    }

    /// The hypervisor family whose stream this opening starts.
    pub fn family(self) -> super::Family {
        match self {
            Opening::Qemu | Opening::QemuMultifd => super::Family::Qemu,
            _ => super::Family::Xen,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Opening::XlHeader => "xl",
            Opening::XlBanner => "xl",
            Opening::Libxl => "libxl",
            Opening::Libxc => "libxc",
            Opening::BackChannel => "back channel",
            Opening::Ssh => "ssh",
            Opening::Qemu => "qemu",
            Opening::QemuMultifd => "qemu multifd",
            Opening::Other => "other",
        }
    }
}

/// What a stream whose first bytes are `first` is. The magics are disjoint
/// in their first 8 bytes, so the order of the tests does not matter.
pub fn sniff(first: &[u8; NEEDED]) -> Opening {
    if first[..] == XL_SAVE_MAGIC[..NEEDED] {
        Opening::XlHeader
    } else if first[..] == xl::BANNER[..NEEDED] {
        Opening::XlBanner
    } else if first == LIBXL_IDENT {
        Opening::Libxl
    } else if first == LIBXC_MARKER {
        Opening::Libxc
    } else if first.starts_with(SSH_BANNER) {
        Opening::Ssh
    } else if *first == super::qemu::wire::OPENING {
        Opening::Qemu
    } else if *first == super::qemu::wire::MULTIFD_OPENING {
        Opening::QemuMultifd
    } else if back_channel_header(first).is_some() {
        Opening::BackChannel
    } else {
        Opening::Other
    }
}

/// Classifies the first bytes of a direction; `None` until [`NEEDED`] bytes
/// are there (an SSH banner is recognised from its first 4).
pub fn classify(first: &[u8]) -> Option<Opening> {
    if first.starts_with(SSH_BANNER) {
        return Some(Opening::Ssh);
    }
    // Short of 8 bytes nothing is ruled out: a back-channel header can start
    // with anything.
    let head: &[u8; NEEDED] = first.get(..NEEDED)?.try_into().ok()?;
    Some(sniff(head))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openings() {
        assert_eq!(
            classify(b"Xen saved domain, xl format\n \0 \r"),
            Some(Opening::XlHeader)
        );
        assert_eq!(
            classify(b"xl migration receiver ready"),
            Some(Opening::XlBanner)
        );
        assert_eq!(classify(b"LibxlFmt\0\0"), Some(Opening::Libxl));
        assert_eq!(classify(b"QEVM\0\0\0\x03\x07"), Some(Opening::Qemu));
        assert_eq!(
            classify(&[0x11, 0x22, 0x33, 0x44, 0, 0, 0, 1]),
            Some(Opening::QemuMultifd)
        );
        assert_eq!(classify(b"QEVM\0\0\0\x02"), Some(Opening::Other));
        assert_eq!(Opening::Qemu.family(), crate::decode::Family::Qemu);
        assert_eq!(classify(&[0xff; 8]), Some(Opening::Libxc));
        assert_eq!(classify(b"SSH-2.0-OpenSSH_9.2"), Some(Opening::Ssh));
        assert_eq!(classify(b"SSH-"), Some(Opening::Ssh));
        // CHECKPOINT_STATE (libxl type 5), body length 4.
        assert_eq!(
            classify(&[5, 0, 0, 0, 4, 0, 0, 0]),
            Some(Opening::BackChannel)
        );
        assert_eq!(classify(b"GET / HTTP/1.1\r\n"), Some(Opening::Other));
        assert_eq!(classify(b"Libx"), None);
        assert_eq!(classify(b"GET / H"), None);
        assert_eq!(classify(b""), None);
        assert!(Opening::Libxc.is_forward());
        assert!(!Opening::XlBanner.is_forward());
    }

    #[test]
    fn magics_are_the_reference_bytes() {
        assert_eq!(
            &XL_SAVE_MAGIC[27..],
            &[0x0a, 0x20, 0x00, 0x20, 0x0d],
            "\"Xen saved domain, xl format\" then 0a 20 00 20 0d"
        );
        assert_eq!(
            LIBXL_IDENT,
            &[0x4c, 0x69, 0x62, 0x78, 0x6c, 0x46, 0x6d, 0x74]
        );
        assert_eq!(LIBXC_IMAGE_ID, &[0x58, 0x45, 0x4e, 0x46]);
        assert_eq!(
            LIBXC_IMAGE_START,
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, b'X', b'E', b'N', b'F']
        );
        // Disjoint in their first 8 bytes, so sniff's order is free.
        let firsts: [&[u8]; 7] = [
            &XL_SAVE_MAGIC[..8],
            &xl::BANNER[..8],
            LIBXL_IDENT,
            LIBXC_MARKER,
            &crate::decode::qemu::wire::OPENING,
            &crate::decode::qemu::wire::MULTIFD_OPENING,
            &[0x0f, 0, 0, 0, 8, 0, 0, 0],
        ];
        for (i, a) in firsts.iter().enumerate() {
            for b in &firsts[i + 1..] {
                assert_ne!(a, b);
            }
            assert!(!a.starts_with(SSH_BANNER));
        }
    }
}
