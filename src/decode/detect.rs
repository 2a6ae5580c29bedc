//! Recognising a migration stream from the first bytes of a TCP direction
//! (PROTOCOL.md sections 1-4), so that connections which are not migrations
//! can be dropped after their first payload.

use super::xl;

/// Bytes [`classify`] needs to decide.
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
    /// Anything else: not the start of a migration stream.
    Other,
}

impl Opening {
    /// The direction carrying this opening is the migration stream itself.
    pub fn is_forward(self) -> bool {
        matches!(self, Opening::XlHeader | Opening::Libxl | Opening::Libxc)
    }

    pub fn name(self) -> &'static str {
        match self {
            Opening::XlHeader => "xl",
            Opening::XlBanner => "xl",
            Opening::Libxl => "libxl",
            Opening::Libxc => "libxc",
            Opening::BackChannel => "back channel",
            Opening::Ssh => "ssh",
            Opening::Other => "other",
        }
    }
}

/// Classifies the first bytes of a direction; `None` until [`NEEDED`] bytes
/// (or fewer, when they already rule everything out) are there.
pub fn classify(first: &[u8]) -> Option<Opening> {
    let n = first.len().min(NEEDED);
    let head = &first[..n];
    let could = |pat: &[u8]| pat.starts_with(head);
    if first.starts_with(b"SSH-") {
        return Some(Opening::Ssh);
    }
    if n < NEEDED {
        let possible = could(&xl::SAVE_MAGIC[..NEEDED])
            || could(&xl::BANNER[..NEEDED])
            || could(b"LibxlFmt")
            || could(&[0xff; NEEDED])
            || could(b"SSH-")
            || n < 8; // a back-channel header can start with anything
        return if possible { None } else { Some(Opening::Other) };
    }
    Some(if head == &xl::SAVE_MAGIC[..NEEDED] {
        Opening::XlHeader
    } else if head == &xl::BANNER[..NEEDED] {
        Opening::XlBanner
    } else if head == b"LibxlFmt" {
        Opening::Libxl
    } else if head == [0xff; NEEDED] {
        Opening::Libxc
    } else if super::decoder::back_channel_header(head).is_some() {
        Opening::BackChannel
    } else {
        Opening::Other
    })
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
        assert_eq!(classify(&[0xff; 8]), Some(Opening::Libxc));
        assert_eq!(classify(b"SSH-2.0-OpenSSH_9.2"), Some(Opening::Ssh));
        // CHECKPOINT_STATE (libxl type 5), body length 4.
        assert_eq!(
            classify(&[5, 0, 0, 0, 4, 0, 0, 0]),
            Some(Opening::BackChannel)
        );
        assert_eq!(classify(b"GET / HTTP/1.1\r\n"), Some(Opening::Other));
        assert_eq!(classify(b"Libx"), None);
        assert_eq!(classify(b""), None);
        assert!(Opening::Libxc.is_forward());
        assert!(!Opening::XlBanner.is_forward());
    }
}
