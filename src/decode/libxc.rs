//! libxc stream views (PROTOCOL.md §4): image header, domain header and the
//! record bodies.
//!
//! Each view has one checked constructor; once it returns `Ok`, no accessor
//! can panic. Each has an `emit` that writes the bytes back from the fields
//! (tests, `synth`); the lengths they check are the record table's
//! ([`records`](super::records)). PAGE_DATA and CHECKPOINT_DIRTY_PFN_LIST can
//! be megabytes, so their pfn entries are summarised by [`PfnSummary`], which
//! the streaming decoder feeds entry by entry without ever holding the body.

use serde::Serialize;

use super::detect::{LIBXC_IMAGE_ID, LIBXC_MARKER};
use super::records::LibxcType;
use super::wire::{be_u16, be_u32, be_u64, le_u16, le_u32, le_u64, BodyError};

pub const IMAGE_HEADER_LEN: usize = 24;
pub const DOMAIN_HEADER_LEN: usize = 16;
pub const MARKER: u64 = u64::from_be_bytes(*LIBXC_MARKER);
/// "XENF", big-endian.
pub const IMAGE_ID: u32 = u32::from_be_bytes(*LIBXC_IMAGE_ID);

/// Byte offsets within the image header (big-endian) and the domain header
/// (little-endian).
pub mod field {
    use std::ops::Range;
    pub const MARKER: Range<usize> = 0..8;
    pub const ID: Range<usize> = 8..12;
    pub const VERSION: Range<usize> = 12..16;
    pub const OPTIONS: Range<usize> = 16..18;
    pub const IMAGE_RESERVED: Range<usize> = 18..24;

    pub const GUEST_TYPE: Range<usize> = 0..4;
    pub const PAGE_SHIFT: Range<usize> = 4..6;
    pub const DOMAIN_RESERVED: Range<usize> = 6..8;
    pub const XEN_MAJOR: Range<usize> = 8..12;
    pub const XEN_MINOR: Range<usize> = 12..16;
}

/// Image header (all fields big-endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ImageHeader {
    pub version: u32,
    pub options: u16,
}

impl ImageHeader {
    /// `None` if short or the marker and id are not 0xFF x 8, "XENF".
    pub fn parse(buf: &[u8]) -> Option<Self> {
        if buf.len() < IMAGE_HEADER_LEN
            || be_u64(buf, field::MARKER.start) != MARKER
            || be_u32(buf, field::ID.start) != IMAGE_ID
        {
            return None;
        }
        Some(ImageHeader {
            version: be_u32(buf, field::VERSION.start),
            options: be_u16(buf, field::OPTIONS.start),
        })
    }

    /// Writes the 24 header bytes (reserved bytes zero).
    pub fn emit(&self, out: &mut [u8; IMAGE_HEADER_LEN]) {
        out[field::MARKER].copy_from_slice(LIBXC_MARKER);
        out[field::ID].copy_from_slice(LIBXC_IMAGE_ID);
        out[field::VERSION].copy_from_slice(&self.version.to_be_bytes());
        out[field::OPTIONS].copy_from_slice(&self.options.to_be_bytes());
        out[field::IMAGE_RESERVED].fill(0);
    }

    pub fn big_endian(&self) -> bool {
        self.options & 1 != 0
    }
}

/// Guest type of the domain header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum GuestType {
    X86Pv,
    X86Hvm,
    Unknown(u32),
}

impl GuestType {
    pub fn name(self) -> String {
        match self {
            GuestType::X86Pv => "x86 PV".into(),
            GuestType::X86Hvm => "x86 HVM".into(),
            GuestType::Unknown(v) => format!("unknown ({v})"),
        }
    }

    pub fn from_u32(v: u32) -> Self {
        match v {
            1 => GuestType::X86Pv,
            2 => GuestType::X86Hvm,
            v => GuestType::Unknown(v),
        }
    }

    pub fn to_u32(self) -> u32 {
        match self {
            GuestType::X86Pv => 1,
            GuestType::X86Hvm => 2,
            GuestType::Unknown(v) => v,
        }
    }
}

/// Domain header (little-endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DomainHeader {
    pub guest_type: GuestType,
    pub page_shift: u16,
    pub xen_major: u32,
    pub xen_minor: u32,
}

impl DomainHeader {
    pub fn parse(buf: &[u8]) -> Option<Self> {
        if buf.len() < DOMAIN_HEADER_LEN {
            return None;
        }
        Some(DomainHeader {
            guest_type: GuestType::from_u32(le_u32(buf, field::GUEST_TYPE.start)),
            page_shift: le_u16(buf, field::PAGE_SHIFT.start),
            xen_major: le_u32(buf, field::XEN_MAJOR.start),
            xen_minor: le_u32(buf, field::XEN_MINOR.start),
        })
    }

    /// Writes the 16 header bytes (reserved bytes zero).
    pub fn emit(&self, out: &mut [u8; DOMAIN_HEADER_LEN]) {
        out[field::GUEST_TYPE].copy_from_slice(&self.guest_type.to_u32().to_le_bytes());
        out[field::PAGE_SHIFT].copy_from_slice(&self.page_shift.to_le_bytes());
        out[field::DOMAIN_RESERVED].fill(0);
        out[field::XEN_MAJOR].copy_from_slice(&self.xen_major.to_le_bytes());
        out[field::XEN_MINOR].copy_from_slice(&self.xen_minor.to_le_bytes());
    }

    /// Page size, if page_shift is sane (12..=21); otherwise `None`.
    pub fn page_size(&self) -> Option<u32> {
        (12..=21)
            .contains(&self.page_shift)
            .then(|| 1u32 << self.page_shift)
    }
}

/// Page type in bits 60-63 of a PAGE_DATA pfn entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageType(pub u8);

impl PageType {
    pub fn carries_data(self) -> bool {
        !matches!(self.0, 0xD..=0xF)
    }

    pub fn name(self) -> &'static str {
        match self.0 {
            0x0 => "normal",
            0x1 => "L1",
            0x2 => "L2",
            0x3 => "L3",
            0x4 => "L4",
            0x9 => "pinned L1",
            0xA => "pinned L2",
            0xB => "pinned L3",
            0xC => "pinned L4",
            0xD => "broken",
            0xE => "allocate-only",
            0xF => "invalid",
            _ => "reserved",
        }
    }
}

/// One u64 pfn entry of PAGE_DATA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PfnEntry(pub u64);

impl PfnEntry {
    pub const PFN_MASK: u64 = (1 << 52) - 1;
    pub const RESERVED_MASK: u64 = 0xff << 52;

    pub fn pfn(self) -> u64 {
        self.0 & Self::PFN_MASK
    }

    pub fn page_type(self) -> PageType {
        PageType((self.0 >> 60) as u8)
    }

    pub fn reserved_bits(self) -> u64 {
        (self.0 & Self::RESERVED_MASK) >> 52
    }
}

/// How many pfn runs a summary keeps; the rest are only counted.
pub const MAX_RUNS: usize = 16;

/// A bounded summary of a list of pfns (PAGE_DATA entries or a dirty list):
/// counts, a page-type histogram, the first [`MAX_RUNS`] runs of consecutive
/// pfns, and order violations. Fed one entry at a time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PfnSummary {
    pub count: u64,
    /// Entries whose type carries a page of data.
    pub data_pages: u64,
    /// Entries per page type (index = type nibble).
    pub types: [u32; 16],
    pub first: Option<u64>,
    pub last: Option<u64>,
    pub min: Option<u64>,
    pub max: Option<u64>,
    /// Inclusive ranges of consecutive pfns, the first MAX_RUNS of them.
    pub runs: Vec<(u64, u64)>,
    pub run_count: u64,
    /// Entries not greater than the previous one.
    pub descents: u64,
    /// Entries with reserved bits 52-59 set.
    pub reserved_set: u64,
}

impl PfnSummary {
    /// Adds a PAGE_DATA entry (pfn and type).
    #[inline]
    pub fn push_entry(&mut self, e: PfnEntry) {
        let t = e.page_type();
        self.types[usize::from(t.0 & 0xf)] += 1;
        if t.carries_data() {
            self.data_pages += 1;
        }
        if e.reserved_bits() != 0 {
            self.reserved_set += 1;
        }
        self.push_pfn(e.pfn());
    }

    /// Adds a bare pfn (dirty list).
    #[inline]
    pub fn push_pfn(&mut self, pfn: u64) {
        self.count += 1;
        match self.last {
            Some(last) if pfn == last.wrapping_add(1) => {
                if let Some(r) = self
                    .runs
                    .last_mut()
                    .filter(|_| self.run_count as usize <= MAX_RUNS)
                {
                    r.1 = pfn;
                }
            }
            _ => {
                self.run_count += 1;
                if self.runs.len() < MAX_RUNS {
                    self.runs.push((pfn, pfn));
                }
            }
        }
        if self.last.is_some_and(|last| pfn <= last) {
            self.descents += 1;
        }
        self.first.get_or_insert(pfn);
        self.last = Some(pfn);
        self.min = Some(self.min.map_or(pfn, |m| m.min(pfn)));
        self.max = Some(self.max.map_or(pfn, |m| m.max(pfn)));
    }

    /// "0x1000-0x13ff" style range text of the first runs.
    pub fn runs_text(&self, max: usize) -> String {
        let mut s = String::new();
        for (i, (a, b)) in self.runs.iter().take(max).enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            if a == b {
                s.push_str(&format!("{a:#x}"));
            } else {
                s.push_str(&format!("{a:#x}-{b:#x}"));
            }
        }
        let shown = self.runs.len().min(max) as u64;
        if self.run_count > shown {
            s.push_str(&format!(", ... {} more runs", self.run_count - shown));
        }
        s
    }
}

/// Bytes before the pfn entries of PAGE_DATA: u32 count, u32 reserved (the
/// record table's least PAGE_DATA body).
pub const PAGE_DATA_HEADER_LEN: usize = LibxcType::PageData.length().head() as usize;

/// A whole PAGE_DATA body (used when the body is in memory, e.g. read back
/// from a capture on demand). The streaming decoder does not build this.
pub struct PageData<'a> {
    body: &'a [u8],
    summary: PfnSummary,
}

impl<'a> PageData<'a> {
    /// Checks the count and that body_length == 8 + 8*count + page_size*(entries with data).
    pub fn new_checked(body: &'a [u8], page_size: u32) -> Result<Self, BodyError> {
        let length = LibxcType::PageData.length();
        if !length.allows_len(body.len()) {
            return Err(BodyError::length(length.expected(), body.len()));
        }
        let count = le_u32(body, 0) as usize;
        let entries_end = count
            .checked_mul(8)
            .and_then(|n| n.checked_add(PAGE_DATA_HEADER_LEN))
            .filter(|&n| n <= body.len())
            .ok_or(BodyError::Value {
                field: "count",
                found: count as u64,
                expected: "entries that fit the body",
            })?;
        let mut summary = PfnSummary::default();
        for chunk in body[PAGE_DATA_HEADER_LEN..entries_end].chunks_exact(8) {
            summary.push_entry(PfnEntry(le_u64(chunk, 0)));
        }
        let expected = (entries_end as u64) + summary.data_pages * u64::from(page_size);
        if expected != body.len() as u64 {
            return Err(BodyError::length(
                format!(
                    "{expected} for {count} entries, {} with data",
                    summary.data_pages
                ),
                body.len(),
            ));
        }
        Ok(PageData { body, summary })
    }

    pub fn count(&self) -> u32 {
        le_u32(self.body, 0)
    }

    pub fn reserved(&self) -> u32 {
        le_u32(self.body, 4)
    }

    pub fn entry(&self, i: usize) -> Option<PfnEntry> {
        (i < self.count() as usize)
            .then(|| PfnEntry(le_u64(self.body, PAGE_DATA_HEADER_LEN + 8 * i)))
    }

    pub fn summary(&self) -> &PfnSummary {
        &self.summary
    }

    pub fn into_summary(self) -> PfnSummary {
        self.summary
    }

    /// Appends a body: the count, the reserved word, the entries, then
    /// `pages`, the data of the entries whose type carries any, in order.
    pub fn emit(entries: &[PfnEntry], pages: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        for e in entries {
            out.extend_from_slice(&e.0.to_le_bytes());
        }
        out.extend_from_slice(pages);
    }
}

impl PfnEntry {
    /// An entry from its pfn (bits 0-51) and page type (bits 60-63).
    pub fn new(pfn: u64, page_type: PageType) -> Self {
        PfnEntry((pfn & Self::PFN_MASK) | u64::from(page_type.0 & 0xf) << 60)
    }
}

/// X86_PV_INFO: u8 guest_width, u8 pt_levels, 6 reserved.
pub struct X86PvInfo<'a>(&'a [u8]);

impl<'a> X86PvInfo<'a> {
    pub fn new_checked(body: &'a [u8]) -> Result<Self, BodyError> {
        let length = LibxcType::X86PvInfo.length();
        if !length.allows_len(body.len()) {
            return Err(BodyError::length(length.expected(), body.len()));
        }
        Ok(X86PvInfo(body))
    }
    pub fn guest_width(&self) -> u8 {
        self.0[0]
    }
    pub fn pt_levels(&self) -> u8 {
        self.0[1]
    }

    /// Appends a body (reserved bytes zero).
    pub fn emit(guest_width: u8, pt_levels: u8, out: &mut Vec<u8>) {
        out.extend_from_slice(&[guest_width, pt_levels, 0, 0, 0, 0, 0, 0]);
    }
}

/// X86_PV_P2M_FRAMES: u32 start_pfn, u32 end_pfn, u64 frames.
pub struct X86PvP2mFrames<'a>(&'a [u8]);

impl<'a> X86PvP2mFrames<'a> {
    pub fn new_checked(body: &'a [u8]) -> Result<Self, BodyError> {
        if body.len() < 8 || body.len() % 8 != 0 {
            return Err(BodyError::length("8 + a multiple of 8", body.len()));
        }
        Ok(X86PvP2mFrames(body))
    }
    pub fn start_pfn(&self) -> u32 {
        le_u32(self.0, 0)
    }
    pub fn end_pfn(&self) -> u32 {
        le_u32(self.0, 4)
    }
    pub fn frames(&self) -> usize {
        (self.0.len() - 8) / 8
    }

    /// Appends a body: start_pfn, end_pfn, then the frame list.
    pub fn emit(start_pfn: u32, end_pfn: u32, frames: &[u64], out: &mut Vec<u8>) {
        out.extend_from_slice(&start_pfn.to_le_bytes());
        out.extend_from_slice(&end_pfn.to_le_bytes());
        for f in frames {
            out.extend_from_slice(&f.to_le_bytes());
        }
    }
}

/// X86_PV_VCPU_BASIC / _EXTENDED / _XSAVE / _MSRS: u32 vcpu_id, u32 reserved, blob.
pub struct VcpuContext<'a>(&'a [u8]);

impl<'a> VcpuContext<'a> {
    pub fn new_checked(body: &'a [u8]) -> Result<Self, BodyError> {
        if body.len() < 8 {
            return Err(BodyError::length("at least 8", body.len()));
        }
        Ok(VcpuContext(body))
    }
    pub fn vcpu_id(&self) -> u32 {
        le_u32(self.0, 0)
    }
    pub fn context_len(&self) -> usize {
        self.0.len() - 8
    }

    /// Appends a body: vcpu_id, the reserved word, then the context blob.
    pub fn emit(vcpu_id: u32, context: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(&vcpu_id.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(context);
    }
}

/// X86_TSC_INFO: u32 mode, u32 khz, u64 nsec, u32 incarnation, u32 reserved.
pub struct X86TscInfo<'a>(&'a [u8]);

impl<'a> X86TscInfo<'a> {
    pub fn new_checked(body: &'a [u8]) -> Result<Self, BodyError> {
        let length = LibxcType::X86TscInfo.length();
        if !length.allows_len(body.len()) {
            return Err(BodyError::length(length.expected(), body.len()));
        }
        Ok(X86TscInfo(body))
    }
    pub fn mode(&self) -> u32 {
        le_u32(self.0, 0)
    }
    pub fn khz(&self) -> u32 {
        le_u32(self.0, 4)
    }
    pub fn nsec(&self) -> u64 {
        le_u64(self.0, 8)
    }
    pub fn incarnation(&self) -> u32 {
        le_u32(self.0, 16)
    }

    /// Appends a body (reserved word zero).
    pub fn emit(mode: u32, khz: u32, nsec: u64, incarnation: u32, out: &mut Vec<u8>) {
        out.extend_from_slice(&mode.to_le_bytes());
        out.extend_from_slice(&khz.to_le_bytes());
        out.extend_from_slice(&nsec.to_le_bytes());
        out.extend_from_slice(&incarnation.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
    }
}

/// One descriptor of an HVM_CONTEXT blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HvmDescriptor {
    pub typecode: u16,
    pub instance: u16,
    pub length: u32,
}

pub fn hvm_typecode_name(code: u16) -> &'static str {
    match code {
        0 => "END",
        1 => "HEADER",
        2 => "CPU",
        3 => "PIC",
        4 => "IOAPIC",
        5 => "LAPIC",
        6 => "LAPIC_REGS",
        7 => "PCI_IRQ",
        8 => "ISA_IRQ",
        9 => "PCI_LINK",
        10 => "PIT",
        11 => "RTC",
        12 => "HPET",
        13 => "PMTIMER",
        14 => "MTRR",
        15 => "VIRIDIAN_DOMAIN",
        16 => "CPU_XSAVE",
        17 => "VIRIDIAN_VCPU",
        18 => "VMCE_VCPU",
        19 => "TSC_ADJUST",
        20 => "CPU_MSR",
        _ => "UNKNOWN",
    }
}

/// HVM_CONTEXT: a sequence of {u16 typecode, u16 instance, u32 length, data}.
pub struct HvmContext<'a>(&'a [u8]);

impl<'a> HvmContext<'a> {
    /// Checks that the descriptors tile the body exactly.
    pub fn new_checked(body: &'a [u8]) -> Result<Self, BodyError> {
        let mut at = 0usize;
        while at < body.len() {
            if body.len() - at < 8 {
                return Err(BodyError::length(
                    format!("a whole descriptor at body offset {at}"),
                    body.len(),
                ));
            }
            let len = le_u32(body, at + 4) as usize;
            at = at
                .checked_add(8 + len)
                .filter(|&end| end <= body.len())
                .ok_or_else(|| {
                    BodyError::length(
                        format!("{} for the descriptor at body offset {at}", at + 8 + len),
                        body.len(),
                    )
                })?;
        }
        Ok(HvmContext(body))
    }

    pub fn descriptors(&self) -> impl Iterator<Item = HvmDescriptor> + 'a {
        let body = self.0;
        let mut at = 0usize;
        std::iter::from_fn(move || {
            if body.len().saturating_sub(at) < 8 {
                return None;
            }
            let d = HvmDescriptor {
                typecode: le_u16(body, at),
                instance: le_u16(body, at + 2),
                length: le_u32(body, at + 4),
            };
            at = at.saturating_add(8 + d.length as usize);
            Some(d)
        })
    }

    /// Appends one descriptor and its data (`data.len()` is its length).
    pub fn emit_descriptor(typecode: u16, instance: u16, data: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(&typecode.to_le_bytes());
        out.extend_from_slice(&instance.to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
    }
}

pub fn hvm_param_name(index: u64) -> &'static str {
    match index {
        0 => "CALLBACK_IRQ",
        1 => "STORE_PFN",
        2 => "STORE_EVTCHN",
        4 => "PAE_ENABLED",
        5 => "IOREQ_PFN",
        6 => "BUFIOREQ_PFN",
        9 => "VIRIDIAN",
        10 => "TIMER_MODE",
        11 => "HPET_ENABLED",
        12 => "IDENT_PT",
        13 => "DM_DOMAIN",
        14 => "ACPI_S_STATE",
        15 => "VM86_TSS",
        16 => "VPT_ALIGN",
        17 => "CONSOLE_PFN",
        18 => "CONSOLE_EVTCHN",
        19 => "ACPI_IOPORTS_LOCATION",
        24 => "NESTEDHVM",
        27 => "PAGING_RING_PFN",
        28 => "MONITOR_RING_PFN",
        29 => "SHARING_RING_PFN",
        31 => "TRIPLE_FAULT_REASON",
        32 => "IOREQ_SERVER_PFN",
        33 => "NR_IOREQ_SERVER_PAGES",
        34 => "VM_GENERATION_ID_ADDR",
        35 => "ALTP2M",
        36 => "X87_FIP_WIDTH",
        37 => "VM86_TSS_SIZED",
        38 => "MCA_CAP",
        _ => "UNKNOWN",
    }
}

/// HVM_PARAMS: u32 count, u32 reserved, count x {u64 index, u64 value}.
pub struct HvmParams<'a>(&'a [u8]);

impl<'a> HvmParams<'a> {
    /// count and reserved: the record table's head of HVM_PARAMS.
    const HEAD: usize = LibxcType::HvmParams.length().head() as usize;
    /// {u64 index, u64 value}: the table's entry size.
    const ENTRY: usize = LibxcType::HvmParams.length().entry_size() as usize;

    /// Checks that the body holds exactly `count` params. (The table's cap
    /// on their number is the decoder's business: a body read back from a
    /// capture is shown whatever its size.)
    pub fn new_checked(body: &'a [u8]) -> Result<Self, BodyError> {
        if body.len() < Self::HEAD {
            return Err(BodyError::length(
                format!("at least {}", Self::HEAD),
                body.len(),
            ));
        }
        let count = le_u32(body, 0) as u64;
        let expected = Self::HEAD as u64 + Self::ENTRY as u64 * count;
        if expected != body.len() as u64 {
            return Err(BodyError::length(
                format!("{expected} for {count} params"),
                body.len(),
            ));
        }
        Ok(HvmParams(body))
    }
    pub fn count(&self) -> u32 {
        le_u32(self.0, 0)
    }
    pub fn params(&self) -> impl Iterator<Item = (u64, u64)> + 'a {
        self.0[Self::HEAD..]
            .chunks_exact(Self::ENTRY)
            .map(|c| (le_u64(c, 0), le_u64(c, 8)))
    }

    /// Appends a body: the count, the reserved word, then the params.
    pub fn emit(params: &[(u64, u64)], out: &mut Vec<u8>) {
        out.extend_from_slice(&(params.len() as u32).to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        for (index, value) in params {
            out.extend_from_slice(&index.to_le_bytes());
            out.extend_from_slice(&value.to_le_bytes());
        }
    }
}

/// A body made of fixed-size entries: X86_CPUID_POLICY (24), X86_MSR_POLICY (16),
/// CHECKPOINT_DIRTY_PFN_LIST (8).
pub struct Entries<'a> {
    body: &'a [u8],
    size: usize,
}

impl<'a> Entries<'a> {
    /// Entry sizes, from the record table.
    pub const CPUID: usize = LibxcType::X86CpuidPolicy.length().entry_size() as usize;
    pub const MSR: usize = LibxcType::X86MsrPolicy.length().entry_size() as usize;
    pub const PFN: usize = LibxcType::CheckpointDirtyPfnList.length().entry_size() as usize;

    pub fn new_checked(body: &'a [u8], size: usize) -> Result<Self, BodyError> {
        if size == 0 || body.len() % size != 0 {
            return Err(BodyError::length(
                format!("a multiple of {size}"),
                body.len(),
            ));
        }
        Ok(Entries { body, size })
    }
    pub fn len(&self) -> usize {
        self.body.len() / self.size
    }
    pub fn is_empty(&self) -> bool {
        self.body.is_empty()
    }
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> {
        self.body.chunks_exact(self.size)
    }

    /// Appends a CHECKPOINT_DIRTY_PFN_LIST body: the pfns as u64s.
    pub fn emit_pfns(pfns: &[u64], out: &mut Vec<u8>) {
        for pfn in pfns {
            out.extend_from_slice(&pfn.to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_header_from_reference_bytes() {
        let mut b = vec![0xff; 8];
        b.extend_from_slice(b"XENF");
        b.extend_from_slice(&[0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0]);
        let h = ImageHeader::parse(&b).unwrap();
        assert_eq!(h.version, 3);
        assert!(!h.big_endian());
        b[8] = b'Y';
        assert!(ImageHeader::parse(&b).is_none());
        assert!(ImageHeader::parse(&[0xff; 23]).is_none());
    }

    #[test]
    fn domain_header_little_endian() {
        let b = [2, 0, 0, 0, 12, 0, 0, 0, 4, 0, 0, 0, 19, 0, 0, 0];
        let d = DomainHeader::parse(&b).unwrap();
        assert_eq!(d.guest_type, GuestType::X86Hvm);
        assert_eq!(d.page_size(), Some(4096));
        assert_eq!((d.xen_major, d.xen_minor), (4, 19));
        let bad = [1, 0, 0, 0, 40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(DomainHeader::parse(&bad).unwrap().page_size(), None);
    }

    fn page_data(entries: &[u64], page: usize) -> Vec<u8> {
        let mut b = (entries.len() as u32).to_le_bytes().to_vec();
        b.extend_from_slice(&[0; 4]);
        for e in entries {
            b.extend_from_slice(&e.to_le_bytes());
        }
        let with_data = entries
            .iter()
            .filter(|e| PfnEntry(**e).page_type().carries_data())
            .count();
        b.resize(b.len() + with_data * page, 0xAB);
        b
    }

    #[test]
    fn page_data_counts_and_types() {
        // pfn 0x10 normal, 0x11 L1 page table, 0x12 invalid (no data), 0x20 pinned L4
        let entries = [
            0x10,
            0x1000_0000_0000_0011,
            0xF000_0000_0000_0012,
            0xC000_0000_0000_0020,
        ];
        let body = page_data(&entries, 4096);
        assert_eq!(body.len(), 8 + 32 + 3 * 4096);
        let p = PageData::new_checked(&body, 4096).unwrap();
        assert_eq!(p.count(), 4);
        assert_eq!(p.entry(1).unwrap().page_type().name(), "L1");
        assert_eq!(p.entry(2).unwrap().pfn(), 0x12);
        assert_eq!(p.entry(4), None);
        let s = p.summary();
        assert_eq!(s.data_pages, 3);
        assert_eq!(s.types[0xF], 1);
        assert_eq!(s.runs, vec![(0x10, 0x12), (0x20, 0x20)]);
        assert_eq!(s.runs_text(8), "0x10-0x12, 0x20");
        assert_eq!(s.descents, 0);
    }

    #[test]
    fn page_data_impossible_lengths() {
        let mut body = page_data(&[1, 2], 4096);
        body.pop();
        assert!(matches!(
            PageData::new_checked(&body, 4096),
            Err(BodyError::Length { .. })
        ));
        let lying = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];
        assert!(matches!(
            PageData::new_checked(&lying, 4096),
            Err(BodyError::Value { field: "count", .. })
        ));
        assert!(PageData::new_checked(&[1, 0], 4096).is_err());
    }

    #[test]
    fn pfn_summary_bounds_its_runs() {
        let mut s = PfnSummary::default();
        for i in 0..100u64 {
            s.push_pfn(i * 2);
        }
        assert_eq!(s.runs.len(), MAX_RUNS);
        assert_eq!(s.run_count, 100);
        assert!(s.runs_text(2).ends_with("98 more runs"));
        s.push_pfn(0);
        assert_eq!(s.descents, 1);
    }

    #[test]
    fn hvm_context_descriptors() {
        let mut b = Vec::new();
        for (code, inst, len) in [(1u16, 0u16, 24u32), (2, 0, 16), (2, 1, 16), (0, 0, 0)] {
            b.extend_from_slice(&code.to_le_bytes());
            b.extend_from_slice(&inst.to_le_bytes());
            b.extend_from_slice(&len.to_le_bytes());
            b.resize(b.len() + len as usize, 0);
        }
        let c = HvmContext::new_checked(&b).unwrap();
        let d: Vec<_> = c.descriptors().collect();
        assert_eq!(d.len(), 4);
        assert_eq!(hvm_typecode_name(d[1].typecode), "CPU");
        assert_eq!(d[2].instance, 1);
        b.truncate(b.len() - 3);
        assert!(HvmContext::new_checked(&b).is_err());
    }

    #[test]
    fn hvm_params_and_entries() {
        let mut b = vec![2, 0, 0, 0, 0, 0, 0, 0];
        for (i, v) in [(1u64, 0xfeffcu64), (17, 0xfeffb)] {
            b.extend_from_slice(&i.to_le_bytes());
            b.extend_from_slice(&v.to_le_bytes());
        }
        let p = HvmParams::new_checked(&b).unwrap();
        let v: Vec<_> = p.params().collect();
        assert_eq!(v, vec![(1, 0xfeffc), (17, 0xfeffb)]);
        assert_eq!(hvm_param_name(17), "CONSOLE_PFN");
        assert!(HvmParams::new_checked(&b[..30]).is_err());
        assert_eq!(
            Entries::new_checked(&[0; 48], Entries::CPUID)
                .unwrap()
                .len(),
            2
        );
        assert!(Entries::new_checked(&[0; 20], Entries::MSR).is_err());
    }

    #[test]
    fn small_fixed_records() {
        let tsc = [
            1, 0, 0, 0, 0x80, 0x1a, 0x06, 0, 5, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0,
        ];
        let t = X86TscInfo::new_checked(&tsc).unwrap();
        assert_eq!(
            (t.mode(), t.khz(), t.nsec(), t.incarnation()),
            (1, 400_000, 5, 7)
        );
        assert!(X86TscInfo::new_checked(&tsc[..20]).is_err());
        let pv = X86PvInfo::new_checked(&[8, 4, 0, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!((pv.guest_width(), pv.pt_levels()), (8, 4));
        let p2m = X86PvP2mFrames::new_checked(&[0, 0, 0, 0, 0xff, 3, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0])
            .unwrap();
        assert_eq!(
            (p2m.start_pfn(), p2m.end_pfn(), p2m.frames()),
            (0, 0x3ff, 1)
        );
        let v = VcpuContext::new_checked(&[3, 0, 0, 0, 0, 0, 0, 0, 1, 2]).unwrap();
        assert_eq!((v.vcpu_id(), v.context_len()), (3, 2));
    }

    // ---- emit: construct from fields, compare with the reference bytes ----

    #[test]
    fn image_header_emit() {
        let bytes = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // marker
            b'X', b'E', b'N', b'F', // id
            0, 0, 0, 2, // version
            0, 1, // options: big-endian
            0, 0, 0, 0, 0, 0, // reserved
        ];
        let h = ImageHeader {
            version: 2,
            options: 1,
        };
        let mut out = [0xAA; IMAGE_HEADER_LEN];
        h.emit(&mut out);
        assert_eq!(out, bytes);
        assert_eq!(ImageHeader::parse(&out), Some(h));
        assert!(h.big_endian());
        assert_eq!((MARKER, IMAGE_ID), (u64::MAX, 0x5845_4e46));
    }

    #[test]
    fn domain_header_emit() {
        let d = DomainHeader {
            guest_type: GuestType::X86Pv,
            page_shift: 12,
            xen_major: 4,
            xen_minor: 17,
        };
        let mut out = [0xAA; DOMAIN_HEADER_LEN];
        d.emit(&mut out);
        assert_eq!(out, [1, 0, 0, 0, 12, 0, 0, 0, 4, 0, 0, 0, 17, 0, 0, 0]);
        assert_eq!(DomainHeader::parse(&out), Some(d));
        for v in [1, 2, 3] {
            assert_eq!(GuestType::from_u32(v).to_u32(), v);
        }
        assert_eq!(DomainHeader::parse(&out[..15]), None);
    }

    #[test]
    fn page_data_emit() {
        let entries = [
            PfnEntry::new(0x10, PageType(0)),
            PfnEntry::new(0x11, PageType(0xF)),
        ];
        assert_eq!(entries[1].0, 0xF000_0000_0000_0011);
        let mut body = Vec::new();
        PageData::emit(&entries, &[0x5A; 8], &mut body);
        assert_eq!(
            body,
            [
                2, 0, 0, 0, 0, 0, 0, 0, // count, reserved
                0x10, 0, 0, 0, 0, 0, 0, 0, // pfn 0x10, normal
                0x11, 0, 0, 0, 0, 0, 0, 0xF0, // pfn 0x11, invalid (no data)
                0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, // one "page" of 8 bytes
            ]
        );
        let p = PageData::new_checked(&body, 8).unwrap();
        assert_eq!(p.count(), 2);
        assert_eq!(p.entry(1), Some(entries[1]));
        assert_eq!(p.summary().data_pages, 1);
        // The page size decides the length: with 4 KiB pages this is short.
        assert!(PageData::new_checked(&body, 4096).is_err());
        assert_eq!(PAGE_DATA_HEADER_LEN, 8);
    }

    #[test]
    fn small_fixed_records_emit() {
        let mut tsc = Vec::new();
        X86TscInfo::emit(1, 400_000, 5, 7, &mut tsc);
        assert_eq!(
            tsc,
            [1, 0, 0, 0, 0x80, 0x1a, 0x06, 0, 5, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0]
        );
        let t = X86TscInfo::new_checked(&tsc).unwrap();
        assert_eq!(
            (t.mode(), t.khz(), t.nsec(), t.incarnation()),
            (1, 400_000, 5, 7)
        );
        assert_eq!(
            X86TscInfo::new_checked(&tsc[..23]).err(),
            Some(BodyError::length("24", 23))
        );

        let mut pv = Vec::new();
        X86PvInfo::emit(8, 4, &mut pv);
        assert_eq!(pv, [8, 4, 0, 0, 0, 0, 0, 0]);
        assert_eq!(X86PvInfo::new_checked(&pv).unwrap().pt_levels(), 4);
        assert_eq!(
            X86PvInfo::new_checked(&[8, 4]).err(),
            Some(BodyError::length("8", 2))
        );

        let mut p2m = Vec::new();
        X86PvP2mFrames::emit(0, 0x3ff, &[0x1234], &mut p2m);
        assert_eq!(
            p2m,
            [0, 0, 0, 0, 0xff, 3, 0, 0, 0x34, 0x12, 0, 0, 0, 0, 0, 0]
        );
        let v = X86PvP2mFrames::new_checked(&p2m).unwrap();
        assert_eq!((v.start_pfn(), v.end_pfn(), v.frames()), (0, 0x3ff, 1));
        assert!(X86PvP2mFrames::new_checked(&p2m[..12]).is_err());

        let mut vcpu = Vec::new();
        VcpuContext::emit(3, &[1, 2], &mut vcpu);
        assert_eq!(vcpu, [3, 0, 0, 0, 0, 0, 0, 0, 1, 2]);
        let v = VcpuContext::new_checked(&vcpu).unwrap();
        assert_eq!((v.vcpu_id(), v.context_len()), (3, 2));
        assert!(VcpuContext::new_checked(&vcpu[..7]).is_err());
    }

    #[test]
    fn hvm_context_emit() {
        let mut body = Vec::new();
        HvmContext::emit_descriptor(1, 0, &[9; 4], &mut body);
        HvmContext::emit_descriptor(0, 0, &[], &mut body);
        assert_eq!(
            body,
            [
                1, 0, 0, 0, 4, 0, 0, 0, 9, 9, 9, 9, // HEADER, 4 bytes
                0, 0, 0, 0, 0, 0, 0, 0, // END
            ]
        );
        let d: Vec<_> = HvmContext::new_checked(&body)
            .unwrap()
            .descriptors()
            .collect();
        assert_eq!(
            d,
            [
                HvmDescriptor {
                    typecode: 1,
                    instance: 0,
                    length: 4
                },
                HvmDescriptor {
                    typecode: 0,
                    instance: 0,
                    length: 0
                }
            ]
        );
        // A descriptor that runs past the body.
        assert!(HvmContext::new_checked(&body[..10]).is_err());
    }

    #[test]
    fn hvm_params_emit_and_impossible_lengths() {
        let mut body = Vec::new();
        HvmParams::emit(&[(1, 0xfeffc)], &mut body);
        assert_eq!(
            body,
            [
                1, 0, 0, 0, 0, 0, 0, 0, // count, reserved
                1, 0, 0, 0, 0, 0, 0, 0, // index STORE_PFN
                0xfc, 0xef, 0x0f, 0, 0, 0, 0, 0, // value
            ]
        );
        let p = HvmParams::new_checked(&body).unwrap();
        assert_eq!(p.params().collect::<Vec<_>>(), [(1, 0xfeffc)]);
        assert_eq!(
            HvmParams::new_checked(&body[..7]).err(),
            Some(BodyError::length("at least 8", 7))
        );
        assert_eq!(
            HvmParams::new_checked(&body[..16]).err(),
            Some(BodyError::length("24 for 1 params", 16))
        );
    }

    #[test]
    fn entries_emit() {
        let mut body = Vec::new();
        Entries::emit_pfns(&[5, 0x100], &mut body);
        assert_eq!(body, [5, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        let e = Entries::new_checked(&body, Entries::PFN).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!((Entries::CPUID, Entries::MSR, Entries::PFN), (24, 16, 8));
        assert_eq!(
            Entries::new_checked(&body[..12], Entries::PFN).err(),
            Some(BodyError::length("a multiple of 8", 12))
        );
    }
}
