//! What the decoder learned from one item (header, xl message or record),
//! bounded in size whatever the body: [`Info`] gives the one-line summary of
//! the packet list and the field tree of the details pane.
//!
//! [`Info::from_body`] turns a whole in-memory record body into an `Info`
//! through the checked views of `libxl` and `libxc`; a body that does not fit
//! its view becomes [`Info::Malformed`] carrying the [`BodyError`].

use std::fmt::Write;

use serde::Serialize;

use super::detail::Field;
use super::libxc::{self, hvm_param_name, hvm_typecode_name, HvmDescriptor, PfnSummary};
use super::libxl::{self, ControlId, EmulatorId};
use super::text::escape_bytes;
use super::wire::{BodyError, LibxcType, LibxlType, RecordType};
use super::xl::{DomainConfig, Message, SaveHeader};

/// How many list entries (xenstore pairs, HVM descriptors, params) an `Info`
/// keeps; the rest are counted only.
pub const MAX_LISTED: usize = 256;

/// Decoded content of one item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Info {
    /// An item of a QEMU stream.
    Qemu(Box<super::qemu::QemuInfo>),
    SaveHeader {
        header: SaveHeader,
        config: DomainConfig,
    },
    XlMessage {
        #[serde(skip)]
        message: Message,
        text: String,
    },
    UnpauseResult {
        result: u8,
    },
    /// Text on the reverse direction that is not an xl message (error output).
    ReceiverText {
        text: String,
    },
    LibxlHeader(libxl::Header),
    ImageHeader(libxc::ImageHeader),
    DomainHeader(libxc::DomainHeader),
    /// A record with an empty body (END, LIBXC_CONTEXT, CHECKPOINT, ...).
    Empty,
    CheckpointState {
        #[serde(serialize_with = "ser_control")]
        control_id: ControlId,
    },
    XenstoreData {
        #[serde(serialize_with = "ser_emulator")]
        emulator: EmulatorId,
        index: u32,
        pairs: Vec<(String, String)>,
        total_pairs: usize,
        well_formed: bool,
    },
    EmulatorContext {
        #[serde(serialize_with = "ser_emulator")]
        emulator: EmulatorId,
        index: u32,
        blob_len: usize,
        qemu_version: Option<u32>,
    },
    PageData(Box<PfnSummary>),
    DirtyPfnList(Box<PfnSummary>),
    PvInfo {
        guest_width: u8,
        pt_levels: u8,
    },
    P2mFrames {
        start_pfn: u32,
        end_pfn: u32,
        frames: usize,
    },
    Vcpu {
        vcpu_id: u32,
        context_len: usize,
    },
    SharedInfo {
        len: usize,
    },
    TscInfo {
        mode: u32,
        khz: u32,
        nsec: u64,
        incarnation: u32,
    },
    HvmContext {
        descriptors: Vec<HvmDescriptor>,
        total: usize,
    },
    HvmParams {
        params: Vec<(u64, u64)>,
        total: usize,
    },
    Policy {
        entries: usize,
    },
    /// A body the tool does not interpret (TOOLSTACK, unknown types).
    Opaque {
        len: u64,
    },
    /// A body over the inspection cap: skipped, not decoded.
    NotInspected {
        len: u64,
    },
    Malformed {
        error: String,
    },
}

fn ser_control<S: serde::Serializer>(c: &ControlId, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(c.name())
}

fn ser_emulator<S: serde::Serializer>(e: &EmulatorId, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&e.name())
}

impl Info {
    /// Decodes a whole body held in memory. `page_size` comes from the
    /// domain header (4096 when unknown).
    pub fn from_body(rtype: RecordType, body: &[u8], page_size: u32) -> Info {
        match Self::try_from_body(rtype, body, page_size) {
            Ok(info) => info,
            Err(e) => Info::Malformed {
                error: e.to_string(),
            },
        }
    }

    fn try_from_body(rtype: RecordType, body: &[u8], page_size: u32) -> Result<Info, BodyError> {
        use LibxcType as C;
        use LibxlType as L;
        let empty = |body: &[u8]| {
            if body.is_empty() {
                Ok(Info::Empty)
            } else {
                Err(BodyError::length("0", body.len()))
            }
        };
        Ok(match rtype {
            RecordType::Libxl(t) => match t {
                L::End | L::LibxcContext | L::CheckpointEnd => empty(body)?,
                L::CheckpointState => Info::CheckpointState {
                    control_id: libxl::CheckpointState::new_checked(body)?.control_id(),
                },
                L::EmulatorXenstoreData => {
                    let x = libxl::EmulatorXenstoreData::new_checked(body)?;
                    let strings: Vec<&[u8]> = x.strings().collect();
                    let pairs = strings
                        .chunks(2)
                        .take(MAX_LISTED)
                        .map(|kv| {
                            (
                                escape_bytes(kv[0]),
                                kv.get(1).map(|v| escape_bytes(v)).unwrap_or_default(),
                            )
                        })
                        .collect();
                    Info::XenstoreData {
                        emulator: x.emulator_id(),
                        index: x.index(),
                        pairs,
                        total_pairs: strings.len().div_ceil(2),
                        well_formed: x.well_formed(),
                    }
                }
                L::EmulatorContext => {
                    let c = libxl::EmulatorContext::new_checked(body)?;
                    Info::EmulatorContext {
                        emulator: c.emulator_id(),
                        index: c.index(),
                        blob_len: c.blob().len(),
                        qemu_version: c.qemu_version(),
                    }
                }
                L::Unknown(_) => Info::Opaque {
                    len: body.len() as u64,
                },
            },
            RecordType::Libxc(t) => match t {
                C::End | C::Checkpoint | C::StaticDataEnd | C::Verify => empty(body)?,
                C::PageData => Info::PageData(Box::new(
                    libxc::PageData::new_checked(body, page_size)?.into_summary(),
                )),
                C::CheckpointDirtyPfnList => {
                    let e = libxc::Entries::new_checked(body, libxc::Entries::PFN)?;
                    let mut s = PfnSummary::default();
                    for pfn in e.iter() {
                        s.push_pfn(super::wire::le_u64(pfn, 0));
                    }
                    Info::DirtyPfnList(Box::new(s))
                }
                C::X86PvInfo => {
                    let v = libxc::X86PvInfo::new_checked(body)?;
                    Info::PvInfo {
                        guest_width: v.guest_width(),
                        pt_levels: v.pt_levels(),
                    }
                }
                C::X86PvP2mFrames => {
                    let v = libxc::X86PvP2mFrames::new_checked(body)?;
                    Info::P2mFrames {
                        start_pfn: v.start_pfn(),
                        end_pfn: v.end_pfn(),
                        frames: v.frames(),
                    }
                }
                C::X86PvVcpuBasic | C::X86PvVcpuExtended | C::X86PvVcpuXsave | C::X86PvVcpuMsrs => {
                    let v = libxc::VcpuContext::new_checked(body)?;
                    Info::Vcpu {
                        vcpu_id: v.vcpu_id(),
                        context_len: v.context_len(),
                    }
                }
                C::SharedInfo => Info::SharedInfo { len: body.len() },
                C::X86TscInfo => {
                    let v = libxc::X86TscInfo::new_checked(body)?;
                    Info::TscInfo {
                        mode: v.mode(),
                        khz: v.khz(),
                        nsec: v.nsec(),
                        incarnation: v.incarnation(),
                    }
                }
                C::HvmContext => {
                    let v = libxc::HvmContext::new_checked(body)?;
                    let total = v.descriptors().count();
                    Info::HvmContext {
                        descriptors: v.descriptors().take(MAX_LISTED).collect(),
                        total,
                    }
                }
                C::HvmParams => {
                    let v = libxc::HvmParams::new_checked(body)?;
                    Info::HvmParams {
                        params: v.params().take(MAX_LISTED).collect(),
                        total: v.count() as usize,
                    }
                }
                C::X86CpuidPolicy => Info::Policy {
                    entries: libxc::Entries::new_checked(body, libxc::Entries::CPUID)?.len(),
                },
                C::X86MsrPolicy => Info::Policy {
                    entries: libxc::Entries::new_checked(body, libxc::Entries::MSR)?.len(),
                },
                C::Toolstack | C::Unknown(_) => Info::Opaque {
                    len: body.len() as u64,
                },
            },
        })
    }

    /// One line for the packet list.
    pub fn summary(&self) -> String {
        match self {
            Info::Qemu(q) => q.summary(),
            Info::SaveHeader { header, config } => {
                let mut s = format!(
                    "xl save header, {} config, {}",
                    if header.config_is_json() {
                        "JSON"
                    } else {
                        "text"
                    },
                    if header.stream_v2() {
                        "stream v2"
                    } else {
                        "legacy stream"
                    }
                );
                if let Some(n) = &config.name {
                    let _ = write!(s, ", domain {n}");
                }
                if let Some(t) = &config.guest_type {
                    let _ = write!(s, " ({t})");
                }
                if let Some(m) = config.memory_kib {
                    let _ = write!(s, ", {} MiB", m / 1024);
                }
                if let Some(v) = config.vcpus {
                    let _ = write!(s, ", {v} vcpus");
                }
                s
            }
            Info::XlMessage { text, .. } => format!("\"{text}\""),
            Info::UnpauseResult { result } => format!(
                "unpause result {result} ({})",
                if *result == 0 {
                    "domain runs on the receiver"
                } else {
                    "failure"
                }
            ),
            Info::ReceiverText { text } => format!("receiver says \"{text}\""),
            Info::LibxlHeader(h) => format!(
                "libxl stream version {}, options {:#x}",
                h.version, h.options
            ),
            Info::ImageHeader(h) => format!(
                "libxc image version {}, options {:#x}",
                h.version, h.options
            ),
            Info::DomainHeader(d) => format!(
                "{}, page_shift {}, Xen {}.{}",
                d.guest_type.name(),
                d.page_shift,
                d.xen_major,
                d.xen_minor
            ),
            Info::Empty => String::new(),
            Info::CheckpointState { control_id } => match control_id {
                ControlId::Unknown(v) => format!("control_id {v} (unknown)"),
                c => c.name().to_string(),
            },
            Info::XenstoreData {
                emulator,
                pairs,
                total_pairs,
                ..
            } => {
                let mut s = format!("{}, {total_pairs} pairs", emulator.name());
                for (k, v) in pairs.iter().take(2) {
                    let _ = write!(s, ", {k}={v}");
                }
                if *total_pairs > 2 {
                    s.push_str(", ...");
                }
                s
            }
            Info::EmulatorContext {
                emulator,
                index,
                blob_len,
                qemu_version,
            } => {
                let mut s = format!("{} index {index}, {blob_len}-byte blob", emulator.name());
                if let Some(v) = qemu_version {
                    let _ = write!(s, " (QEVM v{v})");
                }
                s
            }
            Info::PageData(p) => {
                let mut s = format!("{} {}", pfns(p.count), p.runs_text(2));
                let no_data = p.count - p.data_pages;
                if no_data > 0 {
                    let _ = write!(s, " ({} with data)", p.data_pages);
                }
                s
            }
            Info::DirtyPfnList(p) => {
                if p.count == 0 {
                    "0 pfns".into()
                } else {
                    format!("{} {}", pfns(p.count), p.runs_text(2))
                }
            }
            Info::PvInfo {
                guest_width,
                pt_levels,
            } => {
                format!(
                    "{}-bit guest, {pt_levels}-level page tables",
                    u32::from(*guest_width) * 8
                )
            }
            Info::P2mFrames {
                start_pfn,
                end_pfn,
                frames,
            } => format!("pfns {start_pfn:#x}-{end_pfn:#x}, {frames} frames"),
            Info::Vcpu {
                vcpu_id,
                context_len,
            } => format!("vcpu {vcpu_id}, {context_len}-byte context"),
            Info::SharedInfo { len } => format!("{len} bytes"),
            Info::TscInfo {
                mode,
                khz,
                nsec,
                incarnation,
            } => {
                format!("mode {mode}, {khz} kHz, nsec {nsec}, incarnation {incarnation}")
            }
            Info::HvmContext { descriptors, total } => {
                let cpus = descriptors.iter().filter(|d| d.typecode == 2).count();
                format!("{total} descriptors, {cpus} CPU")
            }
            Info::HvmParams { params, total } => {
                let mut s = format!("{total} params");
                for (i, v) in params.iter().take(2) {
                    let _ = write!(s, ", {}={v:#x}", hvm_param_name(*i));
                }
                if *total > 2 {
                    s.push_str(", ...");
                }
                s
            }
            Info::Policy { entries } => format!("{entries} entries"),
            Info::Opaque { len } => format!("{len} bytes, not interpreted"),
            Info::NotInspected { len } => format!("{len} bytes, over the inspection cap"),
            Info::Malformed { error } => format!("malformed: {error}"),
        }
    }

    /// The field tree for the details pane and `records -V`.
    pub fn details(&self) -> Vec<Field> {
        match self {
            Info::Qemu(q) => q.details(),
            Info::SaveHeader { header, config } => vec![
                f("byteorder", format!("{:?}", header.byteorder)),
                f("mandatory_flags", format!("{:#x}", header.mandatory_flags)).with_children(vec![
                    f("config is JSON (bit 0)", header.config_is_json()),
                    f("stream v2 follows (bit 1)", header.stream_v2()),
                ]),
                f("optional_flags", format!("{:#x}", header.optional_flags)),
                f("optional_data_len", header.optional_data_len),
                f("domain", "").with_children(vec![
                    f("name", config.name.as_deref().unwrap_or("?")),
                    f("type", config.guest_type.as_deref().unwrap_or("?")),
                    f("memory_kib", opt(config.memory_kib)),
                    f("vcpus", opt(config.vcpus)),
                ]),
            ],
            Info::XlMessage { text, .. } => vec![f("text", text)],
            Info::UnpauseResult { result } => vec![f("result", result)],
            Info::ReceiverText { text } => vec![f("text", text)],
            Info::LibxlHeader(h) => vec![
                f("ident", "LibxlFmt"),
                f("version", h.version),
                f("options", format!("{:#x}", h.options)).with_children(vec![
                    f(
                        "big-endian (bit 0)",
                        h.options & libxl::OPTION_BIG_ENDIAN != 0,
                    ),
                    f(
                        "converted from legacy (bit 1)",
                        h.options & libxl::OPTION_LEGACY != 0,
                    ),
                ]),
            ],
            Info::ImageHeader(h) => vec![
                f("marker", "0xffffffffffffffff"),
                f("id", "XENF"),
                f("version", h.version),
                f("options", format!("{:#x}", h.options))
                    .with_children(vec![f("big-endian (bit 0)", h.big_endian())]),
            ],
            Info::DomainHeader(d) => vec![
                f("type", d.guest_type.name()),
                f("page_shift", d.page_shift),
                f("xen_major", d.xen_major),
                f("xen_minor", d.xen_minor),
            ],
            Info::Empty => vec![],
            Info::CheckpointState { control_id } => vec![f(
                "control_id",
                format!("{} ({})", control_id.to_u32(), control_id.name()),
            )],
            Info::XenstoreData {
                emulator,
                index,
                pairs,
                total_pairs,
                well_formed,
            } => {
                let mut kv: Vec<Field> = pairs.iter().map(|(k, v)| f(k.clone(), v)).collect();
                if *total_pairs > pairs.len() {
                    kv.push(f("...", format!("{} more", total_pairs - pairs.len())));
                }
                vec![
                    f("emulator_id", emulator.name()),
                    f("index", index),
                    f("pairs", total_pairs).with_children(kv),
                    f("well formed", well_formed),
                ]
            }
            Info::EmulatorContext {
                emulator,
                index,
                blob_len,
                qemu_version,
            } => vec![
                f("emulator_id", emulator.name()),
                f("index", index),
                f("blob", format!("{blob_len} bytes")),
                f(
                    "QEMU savevm",
                    qemu_version.map_or("no QEVM magic".into(), |v| format!("QEVM version {v}")),
                ),
            ],
            Info::PageData(p) => {
                let types: Vec<Field> = p
                    .types
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| **n > 0)
                    .map(|(t, n)| f(format!("{:#x} {}", t, libxc::PageType(t as u8).name()), n))
                    .collect();
                let mut v = pfn_fields(p);
                v.insert(1, f("pages with data", p.data_pages));
                v.push(f("page types", "").with_children(types));
                v
            }
            Info::DirtyPfnList(p) => pfn_fields(p),
            Info::PvInfo {
                guest_width,
                pt_levels,
            } => {
                vec![f("guest_width", guest_width), f("pt_levels", pt_levels)]
            }
            Info::P2mFrames {
                start_pfn,
                end_pfn,
                frames,
            } => vec![
                f("start_pfn", format!("{start_pfn:#x}")),
                f("end_pfn", format!("{end_pfn:#x}")),
                f("frames", frames),
            ],
            Info::Vcpu {
                vcpu_id,
                context_len,
            } => {
                vec![
                    f("vcpu_id", vcpu_id),
                    f("context", format!("{context_len} bytes")),
                ]
            }
            Info::SharedInfo { len } => vec![f("shared_info", format!("{len} bytes"))],
            Info::TscInfo {
                mode,
                khz,
                nsec,
                incarnation,
            } => vec![
                f("mode", mode),
                f("khz", khz),
                f("nsec", nsec),
                f("incarnation", incarnation),
            ],
            Info::HvmContext { descriptors, total } => {
                let mut d: Vec<Field> = descriptors
                    .iter()
                    .map(|d| {
                        f(
                            format!("{} ({})", hvm_typecode_name(d.typecode), d.typecode),
                            format!("instance {}, {} bytes", d.instance, d.length),
                        )
                    })
                    .collect();
                if *total > descriptors.len() {
                    d.push(f("...", format!("{} more", total - descriptors.len())));
                }
                vec![f("descriptors", total).with_children(d)]
            }
            Info::HvmParams { params, total } => {
                let mut p: Vec<Field> = params
                    .iter()
                    .map(|(i, v)| f(format!("{} ({i})", hvm_param_name(*i)), format!("{v:#x}")))
                    .collect();
                if *total > params.len() {
                    p.push(f("...", format!("{} more", total - params.len())));
                }
                vec![f("count", total).with_children(p)]
            }
            Info::Policy { entries } => vec![f("entries", entries)],
            Info::Opaque { len } => vec![f("body", format!("{len} bytes, not interpreted"))],
            Info::NotInspected { len } => {
                vec![f("body", format!("{len} bytes, over the inspection cap"))]
            }
            Info::Malformed { error } => vec![f("malformed", error)],
        }
    }
}

fn f(name: impl Into<String>, value: impl ToString) -> Field {
    Field::new(name, value)
}

fn opt(v: Option<u64>) -> String {
    v.map_or("?".into(), |v| v.to_string())
}

/// "1 pfn", "2 pfns".
fn pfns(n: u64) -> String {
    format!("{n} pfn{}", if n == 1 { "" } else { "s" })
}

fn pfn_fields(p: &PfnSummary) -> Vec<Field> {
    let hex = |v: Option<u64>| v.map_or("-".into(), |v| format!("{v:#x}"));
    let runs: Vec<Field> = p
        .runs
        .iter()
        .map(|(a, b)| f(format!("{a:#x}-{b:#x}"), pfns(b - a + 1)))
        .collect();
    let mut v = vec![
        f("count", p.count),
        f("first pfn", hex(p.first)),
        f("last pfn", hex(p.last)),
        f("runs", p.run_count).with_children(runs),
    ];
    if p.descents > 0 {
        v.push(f("entries out of ascending order", p.descents));
    }
    if p.reserved_set > 0 {
        v.push(f("entries with reserved bits set", p.reserved_set));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_state_summary() {
        let i = Info::from_body(
            RecordType::Libxl(LibxlType::CheckpointState),
            &[1, 0, 0, 0],
            4096,
        );
        assert_eq!(i.summary(), "SVM_SUSPENDED");
        assert_eq!(i.details()[0].value, "1 (SVM_SUSPENDED)");
    }

    #[test]
    fn empty_records_must_be_empty() {
        let i = Info::from_body(RecordType::Libxc(LibxcType::Checkpoint), &[0; 8], 4096);
        assert_eq!(i.summary(), "malformed: body is 8 bytes, expected 0");
    }

    #[test]
    fn xenstore_values_escaped() {
        let mut body = vec![2, 0, 0, 0, 0, 0, 0, 0];
        body.extend_from_slice(b"key\0v\x1b]0;title\x07\0");
        let i = Info::from_body(
            RecordType::Libxl(LibxlType::EmulatorXenstoreData),
            &body,
            4096,
        );
        let s = i.summary();
        assert!(s.contains("key=v\\x1b]0;title\\x07"), "{s}");
        assert!(!s.chars().any(char::is_control));
    }

    #[test]
    fn dirty_list_summary() {
        let mut body = Vec::new();
        for pfn in [5u64, 6, 7, 100] {
            body.extend_from_slice(&pfn.to_le_bytes());
        }
        let i = Info::from_body(
            RecordType::Libxc(LibxcType::CheckpointDirtyPfnList),
            &body,
            4096,
        );
        assert_eq!(i.summary(), "4 pfns 0x5-0x7, 0x64");
    }
}
