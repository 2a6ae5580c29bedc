//! The per-record index behind the UI's Records view, its filter, and the
//! re-reading of a record's bytes from the capture on demand.
//!
//! [`RecordIndex`] keeps one fixed-size [`RecordEntry`] per decoded item of
//! a session, both directions interleaved in the order the pipeline
//! completed them (capture time order). An entry holds what the list shows
//! and what is needed to find the record again: time, direction, layer,
//! type, stream offset, lengths, bytes lost and the checkpoint it belongs
//! to. Neither the bytes nor the decoded [`Info`] are kept for every record:
//! `Info` is kept only for the latest [`RECENT_INFO`] records (a ring).
//!
//! Memory: `size_of::<RecordEntry>()` is 48 bytes, so 1,000,000 records
//! cost 48 MB (plus the ring of at most [`RECENT_INFO`] `Info` values, and
//! 4 bytes per record that passes an applied filter).
//!
//! The bytes of a record are not kept: the UI reads them again from the
//! capture file when asked (`crate::ui::refetch`).

use std::collections::{HashMap, VecDeque};

use crate::decode::info::Info;
use crate::decode::{Direction, ItemKind, Layer};

/// Records whose decoded [`Info`] is kept (the most recent ones).
pub const RECENT_INFO: usize = 4096;

/// [`RecordEntry::checkpoint`] of a record seen before any checkpoint.
pub const NO_CHECKPOINT: u32 = u32::MAX;

/// One record (or header, or xl message) of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordEntry {
    /// Capture time of the packet that completed it (ns).
    pub ts: u64,
    /// Stream offset of its first byte, in `dir`.
    pub offset: u64,
    /// Bytes on the wire (header, body, padding), saturated at `u32::MAX`
    /// (a body length is a u32, so only the last few bytes of the largest
    /// possible record would be cut; kept small for the 48-byte entry).
    pub wire_len: u32,
    pub kind: ItemKind,
    pub body_length: u32,
    /// Bytes a capture gap lost (saturated at `u32::MAX`).
    pub lost: u32,
    /// Index of the checkpoint it belongs to, or [`NO_CHECKPOINT`]
    /// (saturated at `u32::MAX - 1`).
    pub checkpoint: u32,
    pub dir: Direction,
    pub layer: Layer,
}

impl RecordEntry {
    /// The type's name (an unknown record type shows its number).
    pub fn type_name(&self) -> String {
        type_name(self.kind)
    }

    pub fn checkpoint(&self) -> Option<u64> {
        (self.checkpoint != NO_CHECKPOINT).then_some(u64::from(self.checkpoint))
    }
}

fn type_name(kind: ItemKind) -> String {
    match kind {
        ItemKind::Record(t) if !t.is_known() => t.to_string(),
        k => k.name().to_string(),
    }
}

/// Every record of a session, in completion order.
#[derive(Debug, Clone, Default)]
pub struct RecordIndex {
    entries: Vec<RecordEntry>,
    /// `Info` of the last `recent.len()` entries, oldest first.
    recent: VecDeque<Info>,
    /// Every record's one-line summary, cut to [`SUMMARY_BYTES`], end to end;
    /// `summary_end[i]` is where record `i`'s ends (4 bytes per record plus
    /// the text, ~40 MB per million records).
    summaries: Vec<u8>,
    summary_end: Vec<u32>,
}

/// Longest summary kept for every record (the list shows one line).
pub const SUMMARY_BYTES: usize = 96;

impl RecordIndex {
    pub fn push(&mut self, e: RecordEntry, info: &Info) {
        self.entries.push(e);
        if self.recent.len() == RECENT_INFO {
            self.recent.pop_front();
        }
        self.recent.push_back(info.clone());
        let text = info.summary();
        let mut cut = text.len().min(SUMMARY_BYTES);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        // The arena is capped at 4 GiB (u32 offsets); past it, summaries stop.
        if self.summaries.len() + cut <= u32::MAX as usize {
            self.summaries.extend_from_slice(&text.as_bytes()[..cut]);
        }
        self.summary_end.push(self.summaries.len() as u32);
    }

    /// The one-line summary of record `i` (cut to [`SUMMARY_BYTES`]).
    pub fn summary(&self, i: usize) -> Option<&str> {
        let end = *self.summary_end.get(i)? as usize;
        let start = match i {
            0 => 0,
            _ => *self.summary_end.get(i - 1)? as usize,
        };
        std::str::from_utf8(self.summaries.get(start..end)?).ok()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&RecordEntry> {
        self.entries.get(i)
    }

    pub fn entries(&self) -> &[RecordEntry] {
        &self.entries
    }

    /// The decoded content of record `i` if it is among the recent ones.
    pub fn info(&self, i: usize) -> Option<&Info> {
        let first = self.entries.len() - self.recent.len();
        i.checked_sub(first).and_then(|k| self.recent.get(k))
    }
}

/// Builds an entry from a decoder item.
pub fn entry(
    item: &crate::decode::Item,
    dir: Direction,
    ts: u64,
    checkpoint: Option<u64>,
) -> RecordEntry {
    RecordEntry {
        ts,
        offset: item.offset,
        wire_len: u32::try_from(item.wire_len).unwrap_or(u32::MAX),
        kind: item.kind,
        body_length: item.body_length,
        lost: u32::try_from(item.lost).unwrap_or(u32::MAX),
        checkpoint: checkpoint.map_or(NO_CHECKPOINT, |c| {
            u32::try_from(c)
                .unwrap_or(NO_CHECKPOINT - 1)
                .min(NO_CHECKPOINT - 1)
        }),
        dir,
        layer: item.layer,
    }
}

/// A filter of the Records view: every term must hold; several `type:`
/// terms mean any of those types.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Type names, upper case, matched exactly.
    pub types: Vec<String>,
    pub layer: Option<Layer>,
    pub dir: Option<Direction>,
    pub checkpoint: Option<u64>,
    /// Words, lower case, each found in the type name or the summary (when
    /// the record's `Info` is still kept).
    pub text: Vec<String>,
}

/// Why a filter does not parse (the message names the term).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("unknown layer `{0}` (xl, libxl, libxc)")]
    Layer(String),
    #[error("unknown direction `{0}` (fwd, back)")]
    Direction(String),
    #[error("checkpoint `{0}` is not a number")]
    Checkpoint(String),
    #[error("unknown filter key `{0}` (type, layer, dir, ckpt)")]
    Key(String),
    #[error("`{0}:` needs a value")]
    Empty(String),
}

impl Filter {
    /// Parses words such as `type:PAGE_DATA layer:libxc dir:back ckpt:23
    /// text`. An empty string is the empty filter (everything passes).
    pub fn parse(s: &str) -> Result<Filter, FilterError> {
        let mut f = Filter::default();
        for word in s.split_whitespace() {
            let Some((key, val)) = word.split_once(':') else {
                f.text.push(word.to_lowercase());
                continue;
            };
            if val.is_empty() {
                return Err(FilterError::Empty(key.into()));
            }
            match key.to_ascii_lowercase().as_str() {
                "type" | "t" => f.types.push(val.to_ascii_uppercase()),
                "layer" | "l" => {
                    f.layer = Some(match val.to_ascii_lowercase().as_str() {
                        "xl" => Layer::Xl,
                        "libxl" => Layer::Libxl,
                        "libxc" => Layer::Libxc,
                        _ => return Err(FilterError::Layer(val.into())),
                    })
                }
                "dir" | "d" => {
                    f.dir = Some(match val.to_ascii_lowercase().as_str() {
                        "fwd" | "forward" | "f" | "primary" => Direction::Forward,
                        "back" | "rev" | "reverse" | "b" | "r" | "secondary" => Direction::Reverse,
                        _ => return Err(FilterError::Direction(val.into())),
                    })
                }
                "ckpt" | "checkpoint" | "c" => {
                    let n = val.trim_start_matches('#');
                    f.checkpoint =
                        Some(n.parse().map_err(|_| FilterError::Checkpoint(val.into()))?);
                }
                _ => return Err(FilterError::Key(key.into())),
            }
        }
        Ok(f)
    }

    pub fn is_empty(&self) -> bool {
        *self == Filter::default()
    }
}

/// The records passing a filter, extended as the index grows (a live
/// capture): each call to [`Filtered::update`] looks only at new entries.
#[derive(Debug, Clone, Default)]
pub struct Filtered {
    pub filter: Filter,
    /// Positions in the index of the records that pass, ascending.
    pub matches: Vec<u32>,
    /// Entries of the index already looked at.
    scanned: usize,
    /// Whether a type passes the type and text terms (memo: names are
    /// compared once per distinct type, not once per record).
    by_kind: HashMap<ItemKind, (bool, bool)>,
}

impl Filtered {
    pub fn new(filter: Filter) -> Self {
        Filtered {
            filter,
            ..Filtered::default()
        }
    }

    /// Looks at the entries added since the last call.
    pub fn update(&mut self, idx: &RecordIndex) {
        let f = &self.filter;
        let entries = idx.entries();
        if self.scanned > entries.len() {
            // Another index (session changed): start again.
            self.scanned = 0;
            self.matches.clear();
        }
        for (i, e) in entries.iter().enumerate().skip(self.scanned) {
            if f.dir.is_some_and(|d| d != e.dir)
                || f.layer.is_some_and(|l| l != e.layer)
                || f.checkpoint.is_some_and(|c| e.checkpoint() != Some(c))
            {
                continue;
            }
            let (type_ok, text_ok) = *self.by_kind.entry(e.kind).or_insert_with(|| {
                let name = type_name(e.kind);
                let type_ok = f.types.is_empty() || f.types.contains(&name);
                let lower = name.to_lowercase();
                let text_ok = f.text.iter().all(|w| lower.contains(w.as_str()));
                (type_ok, text_ok)
            });
            if !type_ok {
                continue;
            }
            if !text_ok {
                // The summary may hold the words.
                let Some(sum) = idx.summary(i) else { continue };
                let sum = sum.to_lowercase();
                let lower = type_name(e.kind).to_lowercase();
                if !f
                    .text
                    .iter()
                    .all(|w| lower.contains(w.as_str()) || sum.contains(w.as_str()))
                {
                    continue;
                }
            }
            self.matches.push(i as u32);
        }
        self.scanned = entries.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{LibxcType, LibxlType, RecordType};

    fn e(i: u64, dir: Direction, kind: ItemKind, ckpt: Option<u64>) -> RecordEntry {
        RecordEntry {
            ts: i * 10,
            offset: i * 100,
            wire_len: 100,
            kind,
            body_length: 92,
            lost: 0,
            checkpoint: ckpt.map_or(NO_CHECKPOINT, |c| c as u32),
            dir,
            layer: match kind {
                ItemKind::Record(t) => t.layer(),
                _ => Layer::Xl,
            },
        }
    }

    const PAGE: ItemKind = ItemKind::Record(RecordType::Libxc(LibxcType::PageData));
    const STATE: ItemKind = ItemKind::Record(RecordType::Libxl(LibxlType::CheckpointState));

    #[test]
    fn entry_is_small() {
        assert!(std::mem::size_of::<RecordEntry>() <= 48);
    }

    #[test]
    fn parse_words() {
        let f = Filter::parse("type:CHECKPOINT_STATE dir:back").unwrap();
        assert_eq!(f.types, vec!["CHECKPOINT_STATE"]);
        assert_eq!(f.dir, Some(Direction::Reverse));
        let f = Filter::parse(" layer:LIBXC  ckpt:#23 type:page_data dirty ").unwrap();
        assert_eq!(f.layer, Some(Layer::Libxc));
        assert_eq!(f.checkpoint, Some(23));
        assert_eq!(f.types, vec!["PAGE_DATA"]);
        assert_eq!(f.text, vec!["dirty"]);
        assert!(Filter::parse("").unwrap().is_empty());
        assert_eq!(
            Filter::parse("layer:tcp"),
            Err(FilterError::Layer("tcp".into()))
        );
        assert_eq!(
            Filter::parse("dir:up"),
            Err(FilterError::Direction("up".into()))
        );
        assert_eq!(
            Filter::parse("ckpt:x"),
            Err(FilterError::Checkpoint("x".into()))
        );
        assert_eq!(Filter::parse("foo:1"), Err(FilterError::Key("foo".into())));
        assert_eq!(
            Filter::parse("type:"),
            Err(FilterError::Empty("type".into()))
        );
    }

    #[test]
    fn index_keeps_recent_info_only() {
        let mut idx = RecordIndex::default();
        for i in 0..(RECENT_INFO as u64 + 10) {
            idx.push(
                e(i, Direction::Forward, PAGE, None),
                &Info::Opaque { len: i },
            );
        }
        assert_eq!(idx.len(), RECENT_INFO + 10);
        assert_eq!(idx.info(9), None);
        assert_eq!(idx.info(10), Some(&Info::Opaque { len: 10 }));
        assert_eq!(
            idx.info(RECENT_INFO + 9),
            Some(&Info::Opaque {
                len: RECENT_INFO as u64 + 9
            })
        );
        assert_eq!(idx.info(RECENT_INFO + 10), None);
        // The one-line summary stays for every record.
        assert_eq!(
            idx.summary(0),
            Some(Info::Opaque { len: 0 }.summary().as_str())
        );
        assert!(idx.summary(RECENT_INFO + 9).is_some());
        assert_eq!(idx.summary(RECENT_INFO + 10), None);
    }

    #[test]
    fn filter_is_incremental_and_combines_terms() {
        let mut idx = RecordIndex::default();
        let mut f = Filtered::new(Filter::parse("type:CHECKPOINT_STATE dir:back").unwrap());
        idx.push(e(0, Direction::Forward, STATE, Some(1)), &Info::Empty);
        idx.push(e(1, Direction::Reverse, STATE, Some(1)), &Info::Empty);
        f.update(&idx);
        assert_eq!(f.matches, vec![1]);
        idx.push(e(2, Direction::Reverse, PAGE, Some(2)), &Info::Empty);
        idx.push(e(3, Direction::Reverse, STATE, Some(2)), &Info::Empty);
        f.update(&idx);
        assert_eq!(f.matches, vec![1, 3]);
        let mut c = Filtered::new(Filter::parse("ckpt:2").unwrap());
        c.update(&idx);
        assert_eq!(c.matches, vec![2, 3]);
        let mut t = Filtered::new(Filter::parse("page").unwrap());
        t.update(&idx);
        assert_eq!(t.matches, vec![2]);
        // Text also looks in kept summaries.
        let mut s = Filtered::new(Filter::parse("nothing").unwrap());
        let mut idx2 = RecordIndex::default();
        idx2.push(
            e(0, Direction::Forward, PAGE, None),
            &Info::Opaque { len: 3 },
        );
        s.update(&idx2);
        assert!(s.matches.is_empty());
        let mut s = Filtered::new(Filter::parse("interpreted").unwrap());
        s.update(&idx2);
        assert_eq!(s.matches, vec![0]);
    }
}
