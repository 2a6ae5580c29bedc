//! PAGE_DATA and CHECKPOINT_DIRTY_PFN_LIST bodies as they stream past
//! (PROTOCOL.md §4): the pfn entries go into a [`PfnSummary`] one by one and
//! the page bytes are skipped, so a 4 MiB body is never held.

use crate::decode::libxc::{PfnEntry, PfnSummary};
use crate::decode::wire::{le_u32, le_u64};

/// Streams PAGE_DATA / dirty-list bodies: header (PAGE_DATA only), pfn
/// entries into a [`PfnSummary`], then page bytes skipped.
#[derive(Debug, Default)]
pub(super) struct PfnParser {
    pub(super) page_data: bool,
    pub(super) head: [u8; 8],
    /// Byte position inside the body.
    pos: u64,
    /// End of the entry region (known after the PAGE_DATA header).
    pub(super) entries_end: Option<u64>,
    partial: [u8; 8],
    partial_len: usize,
    pub(super) summary: PfnSummary,
    /// Entries lost to a gap.
    damaged: bool,
    pub(super) bad_count: bool,
    /// Bytes of a gap-broken entry still to drop.
    drop: u64,
}

impl PfnParser {
    pub(super) fn new(page_data: bool, body_length: u32) -> Self {
        PfnParser {
            page_data,
            entries_end: (!page_data).then_some(u64::from(body_length) / 8 * 8),
            ..Default::default()
        }
    }

    pub(super) fn feed(&mut self, mut data: &[u8], body_length: u32) {
        while !data.is_empty() {
            if self.page_data && self.pos < 8 {
                let n = (8 - self.pos as usize).min(data.len());
                self.head[self.pos as usize..self.pos as usize + n].copy_from_slice(&data[..n]);
                self.pos += n as u64;
                data = &data[n..];
                if self.pos == 8 {
                    let count = u64::from(le_u32(&self.head, 0));
                    let end = 8 + 8 * count;
                    if end > u64::from(body_length) {
                        self.bad_count = true;
                        self.entries_end = Some(8);
                    } else {
                        self.entries_end = Some(end);
                    }
                }
                continue;
            }
            let end = self.entries_end.unwrap_or(0);
            if self.pos >= end {
                self.pos += data.len() as u64;
                return;
            }
            if self.drop > 0 {
                let d = (self.drop as usize).min(data.len());
                self.drop -= d as u64;
                self.pos += d as u64;
                data = &data[d..];
                continue;
            }
            let want = ((end - self.pos) as usize).min(data.len());
            let (mut entries, rest) = data.split_at(want);
            self.pos += want as u64;
            data = rest;
            if self.partial_len > 0 {
                let n = (8 - self.partial_len).min(entries.len());
                self.partial[self.partial_len..self.partial_len + n].copy_from_slice(&entries[..n]);
                self.partial_len += n;
                entries = &entries[n..];
                if self.partial_len < 8 {
                    // This chunk ended inside the entry too (all of it used).
                    continue;
                }
                self.partial_len = 0;
                let v = le_u64(&self.partial, 0);
                self.push(v);
            }
            let mut chunks = entries.chunks_exact(8);
            for c in &mut chunks {
                self.push(le_u64(c, 0));
            }
            let rem = chunks.remainder();
            self.partial[..rem.len()].copy_from_slice(rem);
            self.partial_len = rem.len();
        }
    }

    #[inline]
    fn push(&mut self, v: u64) {
        if self.page_data {
            self.summary.push_entry(PfnEntry(v));
        } else {
            self.summary.push_pfn(v);
        }
    }

    /// `n` body bytes are missing.
    pub(super) fn skip(&mut self, n: u64) {
        if self.page_data && self.pos < 8 {
            // The header with the count is gone: no entry can be placed.
            self.damaged = true;
            self.entries_end = Some(8);
            self.pos = self.pos.saturating_add(n);
            return;
        }
        let end = self.entries_end.unwrap_or(0);
        if self.pos < end {
            self.damaged = true;
        }
        self.partial_len = 0;
        self.pos = self.pos.saturating_add(n);
        if self.pos < end {
            // Re-align to the next whole entry; the straddling one is lost.
            let base = if self.page_data { 8 } else { 0 };
            let into = (self.pos - base) % 8;
            self.drop = if into == 0 { 0 } else { 8 - into };
        }
    }
}
