//! libxc stream views (PROTOCOL.md section 4): image header, domain header and
//! the record bodies.
//!
//! Each view has one checked constructor; once it returns `Ok`, no accessor
//! can panic. PAGE_DATA and CHECKPOINT_DIRTY_PFN_LIST can be megabytes, so
//! their pfn entries are summarised by [`PfnSummary`], which the streaming
//! decoder feeds entry by entry without ever holding the body.

use serde::Serialize;

use super::wire::{be_u16, be_u32, be_u64, le_u16, le_u32, le_u64, BodyError};

pub const IMAGE_HEADER_LEN: usize = 24;
pub const DOMAIN_HEADER_LEN: usize = 16;
pub const MARKER: u64 = u64::MAX;
/// "XENF", big-endian.
pub const IMAGE_ID: u32 = 0x5845_4e46;

/// Image header (all fields big-endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ImageHeader {
    pub version: u32,
    pub options: u16,
}

impl ImageHeader {
    /// `None` if short or the marker and id are not 0xFF x 8, "XENF".
    pub fn parse(buf: &[u8]) -> Option<Self> {
        if buf.len() < IMAGE_HEADER_LEN || be_u64(buf, 0) != MARKER || be_u32(buf, 8) != IMAGE_ID {
            return None;
        }
        Some(ImageHeader {
            version: be_u32(buf, 12),
            options: be_u16(buf, 16),
        })
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
            guest_type: match le_u32(buf, 0) {
                1 => GuestType::X86Pv,
                2 => GuestType::X86Hvm,
                v => GuestType::Unknown(v),
            },
            page_shift: le_u16(buf, 4),
            xen_major: le_u32(buf, 8),
            xen_minor: le_u32(buf, 12),
        })
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

/// Bytes before the pfn entries of PAGE_DATA: u32 count, u32 reserved.
pub const PAGE_DATA_HEADER_LEN: usize = 8;

/// A whole PAGE_DATA body (used when the body is in memory, e.g. read back
/// from a capture on demand). The streaming decoder does not build this.
pub struct PageData<'a> {
    body: &'a [u8],
    summary: PfnSummary,
}

impl<'a> PageData<'a> {
    /// Checks the count and that body_length == 8 + 8*count + page_size*(entries with data).
    pub fn new_checked(body: &'a [u8], page_size: u32) -> Result<Self, BodyError> {
        if body.len() < PAGE_DATA_HEADER_LEN {
            return Err(BodyError::length("at least 8", body.len()));
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
}

/// X86_PV_INFO: u8 guest_width, u8 pt_levels, 6 reserved.
pub struct X86PvInfo<'a>(&'a [u8]);

impl<'a> X86PvInfo<'a> {
    pub fn new_checked(body: &'a [u8]) -> Result<Self, BodyError> {
        if body.len() != 8 {
            return Err(BodyError::length("8", body.len()));
        }
        Ok(X86PvInfo(body))
    }
    pub fn guest_width(&self) -> u8 {
        self.0[0]
    }
    pub fn pt_levels(&self) -> u8 {
        self.0[1]
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
}

/// X86_TSC_INFO: u32 mode, u32 khz, u64 nsec, u32 incarnation, u32 reserved.
pub struct X86TscInfo<'a>(&'a [u8]);

impl<'a> X86TscInfo<'a> {
    pub fn new_checked(body: &'a [u8]) -> Result<Self, BodyError> {
        if body.len() != 24 {
            return Err(BodyError::length("24", body.len()));
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
    pub fn new_checked(body: &'a [u8]) -> Result<Self, BodyError> {
        if body.len() < 8 {
            return Err(BodyError::length("at least 8", body.len()));
        }
        let count = le_u32(body, 0) as u64;
        let expected = 8 + 16 * count;
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
        self.0[8..]
            .chunks_exact(16)
            .map(|c| (le_u64(c, 0), le_u64(c, 8)))
    }
}

/// A body made of fixed-size entries: X86_CPUID_POLICY (24), X86_MSR_POLICY (16),
/// CHECKPOINT_DIRTY_PFN_LIST (8).
pub struct Entries<'a> {
    body: &'a [u8],
    size: usize,
}

impl<'a> Entries<'a> {
    pub const CPUID: usize = 24;
    pub const MSR: usize = 16;
    pub const PFN: usize = 8;

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
}
