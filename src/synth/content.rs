//! Bytes of the synthetic streams: headers, record bodies and page contents
//! (PROTOCOL.md sections 2-4).
//!
//! Every builder appends to a caller-owned buffer so that one allocation is
//! reused for the whole stream. Record builders produce a complete record
//! (header, body, zero padding); [`begin`] and [`finish`] do the framing.
//! Nothing here knows about time; all contents are pure functions of the
//! scenario, a seed and an `epoch` counter (bumped once per live round and per
//! checkpoint), so the bytes of a stream never depend on the timing model.

use byteorder::{ByteOrder, LittleEndian};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::decode::libxc::{self, DomainHeader, Entries, GuestType, HvmParams, ImageHeader};
use crate::decode::libxc::{X86PvInfo, X86TscInfo};
use crate::decode::libxl::{self, CheckpointState, ControlId};
use crate::decode::wire::{padding, LibxcType, LibxlType, RecordHeader, RECORD_HEADER_LEN};
use crate::decode::xl::{self, SaveHeader};

/// Guest page size (page_shift 12).
pub const PAGE_SIZE: usize = 4096;
/// Most pfns in one PAGE_DATA record, as libxc batches them (MAX_BATCH_SIZE).
pub const MAX_BATCH: usize = 1024;

/// PAGE_DATA pfn entry types (bits 60-63 of an entry, PROTOCOL.md section 4).
pub mod page_type {
    pub const NORMAL: u64 = 0x0;
    pub const L1: u64 = 0x1;
    pub const L2: u64 = 0x2;
    pub const L3: u64 = 0x3;
    pub const L4: u64 = 0x4;
    pub const PINNED_L1: u64 = 0x9;
    pub const PINNED_L2: u64 = 0xA;
    pub const PINNED_L3: u64 = 0xB;
    pub const PINNED_L4: u64 = 0xC;
    pub const BROKEN: u64 = 0xD;
    pub const XALLOC: u64 = 0xE;
    pub const XTAB: u64 = 0xF;
    /// Bit position of the type in a pfn entry.
    pub const SHIFT: u32 = 60;
    /// Bits 0-51 of an entry hold the pfn.
    pub const PFN_MASK: u64 = (1 << 52) - 1;

    /// Types 0xD (broken), 0xE (allocate-only) and 0xF (invalid) carry no page.
    pub fn has_data(t: u64) -> bool {
        t < BROKEN
    }
}

/// First and one-past-last pfn of the HVM VGA hole (0xA0000-0xBFFFF), which
/// the domain builder leaves unpopulated: libxc sends these pfns as XTAB
/// entries in the first live round.
pub const HVM_HOLE: std::ops::Range<u64> = 0xA0..0xC0;

/// The xl migration banner (PROTOCOL.md section 2 item 1), 54 bytes, no NUL.
pub const BANNER: &[u8] = b"xl migration receiver ready, send binary domain data.\n";
/// xl trailer, reverse (34 bytes with the NUL).
pub const READY_TO_UNPAUSE: &[u8] = b"domain received, ready to unpause\0";
/// xl trailer, forward (44 bytes with the NUL).
pub const CLEARED_TO_UNPAUSE: &[u8] = b"domain is yours, you are cleared to unpause\0";
/// xl trailer, reverse (39 bytes with the NUL), followed by one result byte.
pub const UNPAUSE_RESULT: &[u8] = b"my copy unpause results are as follows\0";
/// Size of the fixed part of the xl save-file header.
pub const XL_HEADER_LEN: usize = 48;

/// COLO CHECKPOINT_STATE control ids (PROTOCOL.md section 3).
pub mod control {
    pub const NEW: u32 = 0;
    pub const SVM_SUSPENDED: u32 = 1;
    pub const SVM_READY: u32 = 2;
    pub const SVM_RESUMED: u32 = 3;
}

/// emulator_id of qemu-upstream.
pub const EMULATOR_QEMU_UPSTREAM: u32 = 2;

/// SplitMix64 finaliser: a cheap, well-mixed hash for deterministic fill.
#[inline]
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Appends `len` pseudo-random bytes derived from `key`.
pub fn fill(out: &mut Vec<u8>, len: usize, key: u64) {
    let mut state = mix(key);
    let mut left = len;
    while left > 0 {
        state = mix(state);
        let n = left.min(8);
        out.extend_from_slice(&state.to_le_bytes()[..n]);
        left -= n;
    }
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Clears `buf` and starts a record of type `rtype` (body_length filled in by
/// [`finish`]).
pub fn begin(buf: &mut Vec<u8>, rtype: u32) {
    buf.clear();
    buf.extend_from_slice(&rtype.to_le_bytes());
    buf.extend_from_slice(&[0; 4]);
}

/// Completes the record started by [`begin`]: writes body_length and appends
/// the zero padding. Returns body_length.
pub fn finish(buf: &mut Vec<u8>) -> u32 {
    let body_length = u32::try_from(buf.len() - RECORD_HEADER_LEN)
        .expect("synthetic records stay far below 4 GiB");
    let rtype = LittleEndian::read_u32(&buf[0..4]);
    let mut header = [0u8; RECORD_HEADER_LEN];
    RecordHeader { rtype, body_length }.emit(&mut header);
    buf[..RECORD_HEADER_LEN].copy_from_slice(&header);
    let new_len = buf.len() + padding(body_length) as usize;
    buf.resize(new_len, 0);
    body_length
}

/// An empty-bodied record (END, LIBXC_CONTEXT, CHECKPOINT_END, STATIC_DATA_END,
/// CHECKPOINT).
pub fn empty_record(buf: &mut Vec<u8>, rtype: u32) {
    begin(buf, rtype);
    finish(buf);
}

/// libxl CHECKPOINT_STATE: body_length 4 and 4 bytes of padding, 16 bytes on
/// the wire, exactly as libxl writes it.
pub fn checkpoint_state(buf: &mut Vec<u8>, control_id: u32) {
    begin(buf, LibxlType::CheckpointState.to_u32());
    CheckpointState::emit(ControlId::from_u32(control_id), buf);
    finish(buf);
}

/// The xl save-file header's fixed part (48 bytes) for a config of
/// `config_len` bytes (PROTOCOL.md section 2 item 2).
pub fn xl_header(buf: &mut Vec<u8>, config_len: u32) {
    let mut header = [0; XL_HEADER_LEN];
    SaveHeader {
        byteorder: xl::ByteOrder::Little,
        byteorder_ok: true,
        // bit 0: config is JSON, bit 1: a stream v2 follows.
        mandatory_flags: 0b11,
        optional_flags: 0,
        optional_data_len: 4 + config_len,
    }
    .emit(&mut header);
    buf.clear();
    buf.extend_from_slice(&header);
}

/// The xl optional data: u32 config_len, then the config (NUL included).
pub fn xl_optional_data(buf: &mut Vec<u8>, config: &[u8]) {
    buf.clear();
    put_u32(buf, config.len() as u32);
    buf.extend_from_slice(config);
}

/// The domain config as xl sends it: libxl's JSON, 4-space indented, with
/// the trailing NUL xl counts in config_len.
pub fn xl_config(name: &str, hvm: bool, memory: u64, vcpus: u32, seed: u64) -> Vec<u8> {
    let memkb = memory / 1024;
    let u = mix(seed ^ 0x7575_6964);
    let v = mix(u);
    let uuid = format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        u >> 32,
        (u >> 16) & 0xffff,
        0x4000 | (u & 0x0fff),
        0x8000 | (v >> 48 & 0x3fff),
        v & 0xffff_ffff_ffff
    );
    let kind = if hvm { "hvm" } else { "pv" };
    let mut b_info = serde_json::json!({
        "max_vcpus": vcpus,
        "avail_vcpus": (0..vcpus).collect::<Vec<_>>(),
        "max_memkb": memkb,
        "target_memkb": memkb,
        "shadow_memkb": 4 * vcpus as u64 * 1024 / 256 + memkb / 256,
        "sched_params": {},
        "claim_mode": "True",
    });
    let type_info = if hvm {
        serde_json::json!({
            "firmware": "bios",
            "acpi": "True",
            "vga": { "kind": "cirrus" },
            "serial_list": ["pty"],
            "device_model_version": "qemu_xen",
        })
    } else {
        serde_json::json!({ "kernel": "/boot/vmlinuz", "ramdisk": "/boot/initrd.img" })
    };
    b_info[format!("type.{kind}")] = type_info;
    let config = serde_json::json!({
        "c_info": { "type": kind, "name": name, "uuid": uuid, "run_hotplug_scripts": "True" },
        "b_info": b_info,
        "disks": [{ "pdev_path": format!("/dev/vg0/{}", name), "vdev": "xvda", "format": "raw", "readwrite": 1 }],
        "nics": [{ "devid": 0, "mac": format!("00:16:3e:{:02x}:{:02x}:{:02x}", u as u8, (u >> 8) as u8, (u >> 16) as u8), "bridge": "xenbr0" }],
        "on_reboot": "restart",
        "on_crash": "destroy",
    });
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    serde::Serialize::serialize(&config, &mut ser).expect("JSON into a Vec cannot fail");
    out.push(b'\n');
    out.push(0);
    out
}

/// libxl stream header, 16 bytes, big-endian (PROTOCOL.md section 3).
pub fn libxl_header(buf: &mut Vec<u8>) {
    let mut header = [0; libxl::HEADER_LEN];
    libxl::Header {
        version: 2,
        options: 0,
    }
    .emit(&mut header);
    buf.clear();
    buf.extend_from_slice(&header);
}

/// libxc image header, 24 bytes, big-endian (PROTOCOL.md section 4).
pub fn image_header(buf: &mut Vec<u8>, version: u32) {
    let mut header = [0; libxc::IMAGE_HEADER_LEN];
    ImageHeader {
        version,
        options: 0,
    }
    .emit(&mut header);
    buf.clear();
    buf.extend_from_slice(&header);
}

/// libxc domain header, 16 bytes, little-endian.
pub fn domain_header(buf: &mut Vec<u8>, hvm: bool, version: u32) {
    let mut header = [0; libxc::DOMAIN_HEADER_LEN];
    DomainHeader {
        guest_type: if hvm {
            GuestType::X86Hvm
        } else {
            GuestType::X86Pv
        },
        page_shift: 12,
        xen_major: 4,
        // Stream v3 arrived with Xen 4.14.
        xen_minor: if version >= 3 { 17 } else { 13 },
    }
    .emit(&mut header);
    buf.clear();
    buf.extend_from_slice(&header);
}

/// X86_PV_INFO: 64-bit guest, 4-level page tables.
pub fn pv_info(buf: &mut Vec<u8>) {
    begin(buf, LibxcType::X86PvInfo.to_u32());
    X86PvInfo::emit(8, 4, buf);
    finish(buf);
}

/// Number of p2m frames of a PV guest with `pages` pages (512 entries a frame).
pub fn p2m_frame_count(pages: u64) -> u64 {
    pages.div_ceil(512)
}

/// X86_PV_P2M_FRAMES: the pfns of the p2m frames, placed at the top of the
/// guest's memory. end_pfn is inclusive (libxc sends max_pfn).
pub fn p2m_frames(buf: &mut Vec<u8>, pages: u64) {
    begin(buf, LibxcType::X86PvP2mFrames.to_u32());
    put_u32(buf, 0);
    put_u32(buf, (pages - 1) as u32);
    let frames = p2m_frame_count(pages);
    for i in 0..frames {
        put_u64(buf, pages - frames + i);
    }
    finish(buf);
}

/// CPUID leaves with their subleaf counts, in the order libx86 serialises a
/// policy: basic leaves, then extended leaves. `None` = XEN_CPUID_NO_SUBLEAF.
const CPUID_LEAVES: &[(u32, Option<u32>)] = &[
    (0x0, None),
    (0x1, None),
    (0x2, None),
    (0x3, None),
    (0x4, Some(4)),
    (0x5, None),
    (0x6, None),
    (0x7, Some(2)),
    (0x8, None),
    (0x9, None),
    (0xa, None),
    (0xb, Some(2)),
    (0xc, None),
    (0xd, Some(5)),
    (0x8000_0000, None),
    (0x8000_0001, None),
    (0x8000_0002, None),
    (0x8000_0003, None),
    (0x8000_0004, None),
    (0x8000_0005, None),
    (0x8000_0006, None),
    (0x8000_0007, None),
    (0x8000_0008, None),
];

/// Packs four ASCII bytes as a register does.
fn reg(s: &[u8]) -> u32 {
    LittleEndian::read_u32(s)
}

/// X86_CPUID_POLICY: 24-byte entries {leaf, subleaf, a, b, c, d}.
pub fn cpuid_policy(buf: &mut Vec<u8>) {
    const BRAND: &[u8; 48] = b"Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz\0\0\0\0\0\0\0";
    begin(buf, LibxcType::X86CpuidPolicy.to_u32());
    for &(leaf, subleaves) in CPUID_LEAVES {
        let (subs, indexed) = match subleaves {
            Some(n) => (n, true),
            None => (1, false),
        };
        for sub in 0..subs {
            let regs: [u32; 4] = match leaf {
                0x0 => [0xd, reg(b"Genu"), reg(b"ntel"), reg(b"ineI")],
                0x1 => [0x0004_06f1, 0x0010_0800, 0xf7fa_3203, 0x1f8b_fbff],
                0x8000_0000 => [0x8000_0008, 0, 0, 0],
                0x8000_0002..=0x8000_0004 => {
                    let at = (leaf - 0x8000_0002) as usize * 16;
                    let b = &BRAND[at..at + 16];
                    [
                        reg(&b[0..4]),
                        reg(&b[4..8]),
                        reg(&b[8..12]),
                        reg(&b[12..16]),
                    ]
                }
                _ => {
                    let h = mix(u64::from(leaf) << 8 | u64::from(sub));
                    [
                        h as u32,
                        (h >> 32) as u32,
                        mix(h) as u32,
                        (mix(h) >> 32) as u32,
                    ]
                }
            };
            put_u32(buf, leaf);
            put_u32(buf, if indexed { sub } else { u32::MAX });
            for r in regs {
                put_u32(buf, r);
            }
        }
    }
    finish(buf);
}

/// X86_MSR_POLICY: 16-byte entries {index, flags, value}: PLATFORM_INFO and
/// ARCH_CAPABILITIES, the two MSRs Xen serialises.
pub fn msr_policy(buf: &mut Vec<u8>) {
    begin(buf, LibxcType::X86MsrPolicy.to_u32());
    for (index, value) in [(0xceu32, 0x8000_0000u64), (0x10a, 0x0000_0000_0200_006b)] {
        put_u32(buf, index);
        put_u32(buf, 0);
        put_u64(buf, value);
    }
    finish(buf);
}

/// X86_TSC_INFO: {mode, khz, nsec, incarnation, reserved}. `nsec` advances
/// with the epoch, not with the timing model, so the bytes stay independent of
/// bandwidth and phase durations.
pub fn tsc_info(buf: &mut Vec<u8>, epoch: u64) {
    begin(buf, LibxcType::X86TscInfo.to_u32());
    let nsec = 3_600_000_000_000 + epoch * 100_000_000;
    X86TscInfo::emit(0, 2_394_454, nsec, (epoch & 0xffff_ffff) as u32, buf);
    finish(buf);
}

/// HVM save typecodes (PROTOCOL.md section 4).
pub mod hvm_code {
    pub const END: u16 = 0;
    pub const HEADER: u16 = 1;
    pub const CPU: u16 = 2;
    pub const PIC: u16 = 3;
    pub const IOAPIC: u16 = 4;
    pub const LAPIC: u16 = 5;
    pub const LAPIC_REGS: u16 = 6;
    pub const PCI_IRQ: u16 = 7;
    pub const ISA_IRQ: u16 = 8;
    pub const PCI_LINK: u16 = 9;
    pub const PIT: u16 = 10;
    pub const RTC: u16 = 11;
    pub const HPET: u16 = 12;
    pub const PMTIMER: u16 = 13;
    pub const MTRR: u16 = 14;
    pub const CPU_XSAVE: u16 = 16;
    pub const VMCE_VCPU: u16 = 18;
    pub const TSC_ADJUST: u16 = 19;
}

/// One HVM save section: (typecode, per-vcpu, data length). The lengths are
/// those of Xen's structs in `public/arch-x86/hvm/save.h` (CPU_XSAVE for an
/// x87/SSE/AVX area). Xen walks the handlers in typecode order, each handler
/// emitting one instance per vcpu or the domain-wide instances.
const HVM_SECTIONS: &[(u16, bool, u32, u16)] = &[
    // (typecode, per vcpu, length, domain-wide instances)
    (hvm_code::CPU, true, 1024, 0),
    (hvm_code::PIC, false, 8, 2),
    (hvm_code::IOAPIC, false, 400, 1),
    (hvm_code::LAPIC, true, 24, 0),
    (hvm_code::LAPIC_REGS, true, 1024, 0),
    (hvm_code::PCI_IRQ, false, 16, 1),
    (hvm_code::ISA_IRQ, false, 8, 1),
    (hvm_code::PCI_LINK, false, 8, 1),
    (hvm_code::PIT, false, 80, 1),
    (hvm_code::RTC, false, 24, 1),
    (hvm_code::HPET, false, 184, 1),
    (hvm_code::PMTIMER, false, 8, 1),
    (hvm_code::MTRR, true, 240, 0),
    (hvm_code::CPU_XSAVE, true, 856, 0),
    (hvm_code::VMCE_VCPU, true, 32, 0),
    (hvm_code::TSC_ADJUST, true, 8, 0),
];

fn hvm_descriptor(buf: &mut Vec<u8>, typecode: u16, instance: u16, length: u32) {
    put_u16(buf, typecode);
    put_u16(buf, instance);
    put_u32(buf, length);
}

/// HVM_CONTEXT: Xen's save blob of descriptors {u16 typecode, u16 instance,
/// u32 length, data}: HEADER, the sections of [`HVM_SECTIONS`], END.
pub fn hvm_context(buf: &mut Vec<u8>, vcpus: u32, epoch: u64) {
    begin(buf, LibxcType::HvmContext.to_u32());
    hvm_descriptor(buf, hvm_code::HEADER, 0, 24);
    put_u32(buf, 0x5438_1286); // HVM_FILE_MAGIC
    put_u32(buf, 1); // HVM_FILE_VERSION
    put_u64(buf, 0); // changeset
    put_u32(buf, 0x0004_06f1); // cpuid
    put_u32(buf, 2_394_454); // gtsc_khz
    for &(code, per_vcpu, len, instances) in HVM_SECTIONS {
        let n = if per_vcpu {
            vcpus
        } else {
            u32::from(instances)
        };
        for instance in 0..n {
            hvm_descriptor(buf, code, instance as u16, len);
            let key = u64::from(code) << 48 ^ u64::from(instance) << 32 ^ epoch;
            fill(buf, len as usize, key);
        }
    }
    hvm_descriptor(buf, hvm_code::END, 0, 0);
    finish(buf);
}

/// The HVM params libxc saves (`write_hvm_params`), in its order, with the
/// values of a qemu-upstream guest built by libxl. libxc skips params whose
/// value is 0 (VIRIDIAN, VM_GENERATION_ID_ADDR, X87_FIP_WIDTH, MCA_CAP here).
pub const HVM_PARAMS: &[(u64, u64)] = &[
    (1, 0xfeffc),                // STORE_PFN
    (5, 0xfeffd),                // IOREQ_PFN
    (6, 0xfeffb),                // BUFIOREQ_PFN
    (27, 0xfeff8),               // PAGING_RING_PFN
    (28, 0xfeff9),               // MONITOR_RING_PFN
    (29, 0xfeffa),               // SHARING_RING_PFN
    (37, 0x0000_0080_fc00_9000), // VM86_TSS_SIZED: size << 32 | address
    (17, 0xfefff),               // CONSOLE_PFN
    (19, 1),                     // ACPI_IOPORTS_LOCATION
    (12, 0xfeff_e000),           // IDENT_PT
    (32, 0xfeff0),               // IOREQ_SERVER_PFN
    (33, 8),                     // NR_IOREQ_SERVER_PAGES
];

/// HVM_PARAMS: u32 count, u32 reserved, {u64 index, u64 value}.
pub fn hvm_params(buf: &mut Vec<u8>) {
    begin(buf, LibxcType::HvmParams.to_u32());
    HvmParams::emit(HVM_PARAMS, buf);
    finish(buf);
}

/// SHARED_INFO: one page.
pub fn shared_info(buf: &mut Vec<u8>, epoch: u64) {
    begin(buf, LibxcType::SharedInfo.to_u32());
    fill(buf, PAGE_SIZE, 0x5348_494e_464f ^ epoch);
    finish(buf);
}

/// The per-vcpu PV records in libxc's order, with their blob sizes:
/// vcpu_guest_context_x86_64, the extended context, an x87/SSE/AVX xsave
/// area with its 16-byte header, and two xen_domctl_vcpu_msr entries.
pub const PV_VCPU_RECORDS: &[(LibxcType, usize)] = &[
    (LibxcType::X86PvVcpuBasic, 5168),
    (LibxcType::X86PvVcpuExtended, 128),
    (LibxcType::X86PvVcpuXsave, 848),
    (LibxcType::X86PvVcpuMsrs, 32),
];

/// One X86_PV_VCPU_* record: u32 vcpu_id, u32 reserved, blob.
pub fn pv_vcpu(buf: &mut Vec<u8>, rtype: LibxcType, vcpu: u32, len: usize, epoch: u64) {
    begin(buf, rtype.to_u32());
    put_u32(buf, vcpu);
    put_u32(buf, 0);
    if rtype == LibxcType::X86PvVcpuMsrs {
        // MSR_SPEC_CTRL and MSR_TSC_AUX, {u32 index, u32 reserved, u64 value}.
        for (index, value) in [(0x48u32, 0u64), (0xc000_0103, u64::from(vcpu))] {
            put_u32(buf, index);
            put_u32(buf, 0);
            put_u64(buf, value);
        }
        debug_assert_eq!(len, 32);
    } else {
        let key = u64::from(rtype.to_u32()) << 40 ^ u64::from(vcpu) << 32 ^ epoch;
        fill(buf, len, key);
    }
    finish(buf);
}

/// The xenstore keys libxl saves for a qemu-upstream guest: its physmap
/// entries (relative to the device-model path), as key/value pairs.
const XENSTORE_PAIRS: &[(&str, &str)] = &[
    ("physmap/f0000000/start_addr", "f0000000"),
    ("physmap/f0000000/size", "800000"),
    ("physmap/f0000000/name", "vga.vram"),
    ("physmap/f1000000/start_addr", "f1000000"),
    ("physmap/f1000000/size", "10000"),
    ("physmap/f1000000/name", "cirrus_vga.rom"),
];

/// EMULATOR_XENSTORE_DATA: u32 emulator_id, u32 index, then NUL-terminated
/// key, value, key, value...
pub fn emulator_xenstore_data(buf: &mut Vec<u8>) {
    begin(buf, LibxlType::EmulatorXenstoreData.to_u32());
    put_u32(buf, EMULATOR_QEMU_UPSTREAM);
    put_u32(buf, 0);
    for (key, value) in XENSTORE_PAIRS {
        buf.extend_from_slice(key.as_bytes());
        buf.push(0);
        buf.extend_from_slice(value.as_bytes());
        buf.push(0);
    }
    finish(buf);
}

/// QEMU device sections saved by `xen-save-devices-state` for an HVM guest:
/// (idstr, instance, version, state bytes).
const QEMU_SECTIONS: &[(&str, u32, u32, usize)] = &[
    ("timer", 0, 2, 24),
    ("cpu_common", 0, 1, 16),
    ("PCIBUS", 0, 1, 40),
    ("I440FX", 0, 3, 360),
    ("PIIX3-xen", 0, 3, 300),
    ("piix4_pm", 0, 3, 420),
    ("cirrus_vga", 0, 2, 1720),
    ("e1000", 0, 2, 1180),
    ("ide", 0, 3, 620),
    ("serial", 0, 3, 56),
    ("ps2kbd", 0, 3, 84),
    ("ps2mouse", 0, 2, 76),
    ("xen_platform", 0, 4, 32),
    ("dma", 0, 1, 144),
    ("dma", 1, 1, 144),
];

/// EMULATOR_CONTEXT: u32 emulator_id (qemu-upstream), u32 index, then QEMU's
/// device state: "QEVM", BE u32 version 3, a configuration section, full
/// device sections with footers, EOF. About 6 KiB.
pub fn emulator_context(buf: &mut Vec<u8>, epoch: u64) {
    begin(buf, LibxlType::EmulatorContext.to_u32());
    put_u32(buf, EMULATOR_QEMU_UPSTREAM);
    put_u32(buf, 0);
    buf.extend_from_slice(b"QEVM");
    buf.extend_from_slice(&3u32.to_be_bytes());
    // QEMU_VM_CONFIGURATION: BE u32 length, machine name.
    buf.push(0x07);
    buf.extend_from_slice(&5u32.to_be_bytes());
    buf.extend_from_slice(b"xenfv");
    for (id, &(name, instance, version, len)) in QEMU_SECTIONS.iter().enumerate() {
        let section_id = id as u32 + 1;
        buf.push(0x04); // QEMU_VM_SECTION_FULL
        buf.extend_from_slice(&section_id.to_be_bytes());
        buf.push(name.len() as u8);
        buf.extend_from_slice(name.as_bytes());
        buf.extend_from_slice(&instance.to_be_bytes());
        buf.extend_from_slice(&version.to_be_bytes());
        fill(buf, len, u64::from(section_id) << 40 ^ epoch);
        buf.push(0x7e); // QEMU_VM_SECTION_FOOTER
        buf.extend_from_slice(&section_id.to_be_bytes());
    }
    buf.push(0x01); // QEMU_VM_EOF
    finish(buf);
}

/// CHECKPOINT_DIRTY_PFN_LIST: ascending u64 pfns (may be empty).
pub fn dirty_pfn_list(buf: &mut Vec<u8>, pfns: &[u64]) {
    begin(buf, LibxcType::CheckpointDirtyPfnList.to_u32());
    Entries::emit_pfns(pfns, buf);
    finish(buf);
}

/// Body length of a PAGE_DATA record with `count` entries of which `data`
/// carry a page.
pub fn page_data_body_len(count: u64, data: u64) -> u64 {
    8 + 8 * count + PAGE_SIZE as u64 * data
}

/// Deterministic page contents: a few template pages built once from the
/// seed (zero, random, text, pointer-rich); a page is its pfn's template with
/// the pfn and epoch stamped into the first 16 bytes (zero pages stay zero).
/// Filling a page is one 4 KiB copy.
pub struct Pages {
    templates: Vec<u8>,
    salt: u64,
    pv: bool,
}

const TEMPLATES: usize = 4;

impl Pages {
    pub fn new(seed: u64, pv: bool) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(3);
        let mut templates = vec![0u8; TEMPLATES * PAGE_SIZE];
        // Template 0 stays zero.
        rng.fill(&mut templates[PAGE_SIZE..2 * PAGE_SIZE]);
        let text = b"Nov 26 03:17:01 guest kernel: [ 4242.000000] eth0: link up, 10000 Mbps\n";
        for (i, b) in templates[2 * PAGE_SIZE..3 * PAGE_SIZE]
            .iter_mut()
            .enumerate()
        {
            *b = text[i % text.len()];
        }
        for chunk in templates[3 * PAGE_SIZE..].chunks_exact_mut(8) {
            let r: u64 = rng.gen();
            let v = if r & 3 == 0 {
                0
            } else {
                0xffff_8880_0000_0000 | (r >> 20 & 0x3fff_fff8)
            };
            chunk.copy_from_slice(&v.to_le_bytes());
        }
        Pages {
            templates,
            salt: mix(seed ^ 0x7061_6765),
            pv,
        }
    }

    /// The page type of `pfn` in this guest: HVM pages are normal except the
    /// VGA hole (XTAB); a PV guest has a stable scattering of L1-L4 tables,
    /// some pinned, with one of each type at pfns 16-23 so that small guests
    /// show them all.
    #[inline]
    pub fn page_type(&self, pfn: u64) -> u64 {
        use page_type::*;
        if !self.pv {
            return if HVM_HOLE.contains(&pfn) {
                XTAB
            } else {
                NORMAL
            };
        }
        const FIXED: [u64; 8] = [L1, L2, L3, L4, PINNED_L1, PINNED_L2, PINNED_L3, PINNED_L4];
        if (16..24).contains(&pfn) {
            return FIXED[(pfn - 16) as usize];
        }
        match mix(pfn ^ self.salt) % 4096 {
            0 => PINNED_L4,
            1 => L3,
            2..=5 => L2,
            6..=69 => L1,
            _ => NORMAL,
        }
    }

    /// Appends the contents of `pfn` at `epoch`.
    #[inline]
    pub fn append(&self, out: &mut Vec<u8>, pfn: u64, epoch: u64) {
        let t = (mix(pfn ^ self.salt.rotate_left(17)) % TEMPLATES as u64) as usize;
        let start = out.len();
        out.extend_from_slice(&self.templates[t * PAGE_SIZE..(t + 1) * PAGE_SIZE]);
        if t != 0 {
            out[start..start + 8].copy_from_slice(&pfn.to_le_bytes());
            out[start + 8..start + 16].copy_from_slice(&epoch.to_le_bytes());
        }
    }

    /// Builds a PAGE_DATA record for `pfns` (ascending, at most
    /// [`MAX_BATCH`]) into `buf`. Returns the number of entries with data.
    pub fn page_data(&self, buf: &mut Vec<u8>, pfns: &[u64], epoch: u64) -> u64 {
        debug_assert!(!pfns.is_empty() && pfns.len() <= MAX_BATCH);
        begin(buf, LibxcType::PageData.to_u32());
        put_u32(buf, pfns.len() as u32);
        put_u32(buf, 0);
        let mut data = 0;
        for &pfn in pfns {
            let t = self.page_type(pfn);
            data += u64::from(page_type::has_data(t));
            put_u64(buf, (pfn & page_type::PFN_MASK) | t << page_type::SHIFT);
        }
        for &pfn in pfns {
            if page_type::has_data(self.page_type(pfn)) {
                self.append(buf, pfn, epoch);
            }
        }
        finish(buf);
        data
    }

    /// Body length of the PAGE_DATA record [`Pages::page_data`] builds.
    pub fn page_data_len(&self, pfns: &[u64]) -> u64 {
        let data = pfns
            .iter()
            .filter(|&&p| page_type::has_data(self.page_type(p)))
            .count() as u64;
        page_data_body_len(pfns.len() as u64, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::wire::RecordHeader;

    #[test]
    fn xl_texts_have_their_documented_lengths() {
        assert_eq!(BANNER.len(), 54);
        assert_eq!(READY_TO_UNPAUSE.len(), 34);
        assert_eq!(CLEARED_TO_UNPAUSE.len(), 44);
        assert_eq!(UNPAUSE_RESULT.len(), 39);
        let mut buf = Vec::new();
        xl_header(&mut buf, 100);
        assert_eq!(&buf[..27], b"Xen saved domain, xl format");
        assert_eq!(&buf[27..32], &[0x0a, 0x20, 0x00, 0x20, 0x0d]);
        assert_eq!(buf.len(), XL_HEADER_LEN);
        assert_eq!(&buf[32..36], &[4, 3, 2, 1]);
        assert_eq!(LittleEndian::read_u32(&buf[44..48]), 104);
    }

    #[test]
    fn checkpoint_state_is_sixteen_bytes() {
        let mut buf = Vec::new();
        checkpoint_state(&mut buf, control::SVM_READY);
        assert_eq!(
            buf,
            [5, 0, 0, 0, 4, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0].to_vec()
        );
    }

    #[test]
    fn headers_are_big_endian_where_marked() {
        let mut buf = Vec::new();
        libxl_header(&mut buf);
        assert_eq!(&buf[..8], b"LibxlFmt");
        assert_eq!(&buf[8..16], &[0, 0, 0, 2, 0, 0, 0, 0]);
        image_header(&mut buf, 3);
        assert_eq!(buf.len(), 24);
        assert_eq!(
            &buf[..12],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, b'X', b'E', b'N', b'F']
        );
        assert_eq!(&buf[12..16], &[0, 0, 0, 3]);
        domain_header(&mut buf, true, 3);
        assert_eq!(&buf[..8], &[2, 0, 0, 0, 12, 0, 0, 0]);
    }

    #[test]
    fn hvm_context_descriptors_walk_to_end() {
        let mut buf = Vec::new();
        hvm_context(&mut buf, 2, 7);
        let h = RecordHeader::parse(&buf).unwrap();
        let body = &buf[8..8 + h.body_length as usize];
        let mut at = 0;
        let mut codes = Vec::new();
        loop {
            let code = LittleEndian::read_u16(&body[at..]);
            let len = LittleEndian::read_u32(&body[at + 4..]) as usize;
            codes.push(code);
            at += 8 + len;
            if code == hvm_code::END {
                assert_eq!(len, 0);
                break;
            }
        }
        assert_eq!(at, body.len());
        assert_eq!(codes[0], hvm_code::HEADER);
        // HEADER + 2 CPU + 2 PIC + IOAPIC + 2 LAPIC + 2 LAPIC_REGS + 7 single
        // + 2 MTRR + 2 XSAVE + 2 VMCE + 2 TSC_ADJUST + END
        assert_eq!(codes.len(), 1 + 2 + 2 + 1 + 2 + 2 + 7 + 2 + 2 + 2 + 2 + 1);
        // Typecodes ascend, as Xen walks its handlers in order.
        assert!(codes[..codes.len() - 1].windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn policies_have_whole_entries() {
        let mut buf = Vec::new();
        cpuid_policy(&mut buf);
        let h = RecordHeader::parse(&buf).unwrap();
        let entries: u32 = CPUID_LEAVES.iter().map(|&(_, s)| s.unwrap_or(1)).sum();
        assert_eq!(entries, 32);
        assert_eq!(h.body_length, 24 * entries);
        assert_eq!(&buf[8 + 12..8 + 16], b"Genu");
        msr_policy(&mut buf);
        assert_eq!(RecordHeader::parse(&buf).unwrap().body_length, 32);
    }

    #[test]
    fn emulator_context_starts_with_qevm() {
        let mut buf = Vec::new();
        emulator_context(&mut buf, 0);
        assert_eq!(&buf[16..20], b"QEVM");
        assert_eq!(&buf[20..24], &[0, 0, 0, 3]);
        let h = RecordHeader::parse(&buf).unwrap();
        assert!((4096..16384).contains(&h.body_length));
        assert_eq!(buf.len() % 8, 0);
    }

    #[test]
    fn page_data_layout() {
        let pages = Pages::new(1, false);
        let pfns: Vec<u64> = (0x9e..0xc2).collect();
        let mut buf = Vec::new();
        let data = pages.page_data(&mut buf, &pfns, 5);
        assert_eq!(data, 4); // 0x9e, 0x9f, 0xc0, 0xc1
        let h = RecordHeader::parse(&buf).unwrap();
        assert_eq!(u64::from(h.body_length), page_data_body_len(36, 4));
        assert_eq!(u64::from(h.body_length), pages.page_data_len(&pfns));
        let entry = LittleEndian::read_u64(&buf[16 + 8 * 2..]);
        assert_eq!(entry, 0xa0 | page_type::XTAB << 60);
    }

    #[test]
    fn pv_types_include_every_page_table_type() {
        let pages = Pages::new(9, true);
        let types: std::collections::BTreeSet<u64> =
            (0..4096).map(|p| pages.page_type(p)).collect();
        for t in [0, 1, 2, 3, 4, 9, 10, 11, 12] {
            assert!(types.contains(&t), "type {t:#x} missing");
        }
    }

    #[test]
    fn config_is_nul_terminated_json() {
        let c = xl_config("vm\"1", true, 64 << 20, 2, 3);
        assert_eq!(c.last(), Some(&0));
        let v: serde_json::Value = serde_json::from_slice(&c[..c.len() - 1]).unwrap();
        assert_eq!(v["c_info"]["name"], "vm\"1");
        assert_eq!(v["c_info"]["type"], "hvm");
        assert_eq!(v["b_info"]["max_memkb"], 65536);
        assert_eq!(v["b_info"]["max_vcpus"], 2);
    }
}
