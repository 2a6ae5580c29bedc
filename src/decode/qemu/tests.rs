//! The QEMU decoder on hand-written bytes: every item kind, COLO
//! checkpoints, the return path, gaps, mid-stream starts, truncation and
//! chunking invariance.

use super::info::{QemuInfo, QemuKind};
use super::wire::{self, ram_flag, ColoMessage, SectionType};
use super::QemuDecoder;
use crate::decode::{Anchor, DiagKind, Direction, Event, Info, ItemKind};

const PAGE: usize = 4096;

/// A QEMU stream written by hand, piece by piece.
#[derive(Default)]
struct Stream(Vec<u8>);

impl Stream {
    fn bytes(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }
    fn header(self) -> Self {
        self.bytes(b"QEVM\0\0\0\x03")
    }
    fn config(self, machine: &str) -> Self {
        let mut b = vec![0x07];
        b.extend_from_slice(&(machine.len() as u32).to_be_bytes());
        b.extend_from_slice(machine.as_bytes());
        self.bytes(&b)
    }
    fn command(self, cmd: u16, data: &[u8]) -> Self {
        self.bytes(&wire::emit_command(cmd, data))
    }
    fn named(self, t: SectionType, id: u32, name: &str, version: u32) -> Self {
        self.bytes(&wire::emit_section_header(t, id, Some((name, 0, version))))
    }
    fn section(self, t: SectionType, id: u32) -> Self {
        self.bytes(&wire::emit_section_header(t, id, None))
    }
    fn footer(self, id: u32) -> Self {
        self.bytes(&wire::emit_footer(id))
    }
    fn mem_size(self, blocks: &[(&str, u64)]) -> Self {
        let total: u64 = blocks.iter().map(|b| b.1).sum();
        let mut s = self.bytes(&(total | ram_flag::MEM_SIZE).to_be_bytes());
        for (name, size) in blocks {
            s = s.bytes(&[name.len() as u8]).bytes(name.as_bytes());
            s = s.bytes(&size.to_be_bytes());
        }
        s
    }
    fn page(self, addr: u64, block: Option<&str>) -> Self {
        self.bytes(&wire::emit_ram_header(addr, ram_flag::PAGE, block))
            .bytes(&[0x7e; PAGE])
    }
    fn zero(self, addr: u64, block: Option<&str>) -> Self {
        self.bytes(&wire::emit_ram_header(addr, ram_flag::ZERO, block))
            .bytes(&[0])
    }
    fn eos(self) -> Self {
        self.bytes(&ram_flag::EOS.to_be_bytes())
    }
    fn eof(self) -> Self {
        self.bytes(&[0])
    }
    fn vmdesc(self, json: &str) -> Self {
        self.bytes(&[0x06])
            .bytes(&(json.len() as u32).to_be_bytes())
            .bytes(json.as_bytes())
    }
    fn colo(self, m: ColoMessage, value: u64) -> Self {
        self.bytes(&m.emit(value))
    }
}

/// Device state of a FULL section whose body holds 0x7e bytes that are
/// not its footer.
const TIMER_BODY: &[u8] = &[0x7e, 0, 0, 0, 9, 0x7e, 0, 0, 0, 3, 0xff, 1, 2, 3];

/// A whole precopy migration: header, configuration, return path, RAM in
/// three sections, two devices, EOF and the description.
fn plain() -> Stream {
    Stream::default()
        .header()
        .config("pc-i440fx-7.2")
        .command(1, &[])
        .command(2, &1u32.to_be_bytes())
        .named(SectionType::Start, 2, "ram", 4)
        .mem_size(&[("pc.ram", 64 << 20), ("vga.vram", 16 << 20)])
        .eos()
        .footer(2)
        .section(SectionType::Part, 2)
        .page(0, Some("pc.ram"))
        .zero(0x1000, None)
        .page(0x2000, None)
        .zero(0, Some("vga.vram"))
        .eos()
        .footer(2)
        .section(SectionType::End, 2)
        .page(0x1000, Some("pc.ram"))
        .eos()
        .footer(2)
        .named(SectionType::Full, 3, "timer", 2)
        .bytes(TIMER_BODY)
        .footer(3)
        .named(SectionType::Full, 4, "0000:00:01.3/piix4_pm", 3)
        .bytes(&[1, 2, 3, 4])
        .footer(4)
        .eof()
        .vmdesc(r#"{"page_size":4096,"devices":[{"name":"timer"},{"name":"piix4_pm"}]}"#)
}

/// The device state a COLO checkpoint sends after VMSTATE_SIZE.
fn device_state() -> Vec<u8> {
    Stream::default()
        .named(SectionType::Full, 3, "timer", 2)
        .bytes(TIMER_BODY)
        .footer(3)
        .named(SectionType::Full, 5, "apic", 3)
        .bytes(&[0x7e, 0, 0, 0, 5])
        .bytes(&[9; 20])
        .footer(5)
        .eof()
        .0
}

/// The initial COLO migration and two checkpoints.
fn colo() -> Stream {
    let dev = device_state();
    let mut s = Stream::default()
        .header()
        .command(8, &[])
        .named(SectionType::Start, 2, "ram", 4)
        .mem_size(&[("pc.ram", 64 << 20)])
        .eos()
        .footer(2)
        .section(SectionType::End, 2)
        .zero(0, Some("pc.ram"))
        .eos()
        .footer(2)
        .named(SectionType::Full, 3, "timer", 2)
        .bytes(TIMER_BODY)
        .footer(3)
        .eof()
        .vmdesc("{}");
    for k in 0..2u64 {
        s = s
            .colo(ColoMessage::CheckpointRequest, 0)
            .colo(ColoMessage::VmstateSend, 0)
            .section(SectionType::End, 2)
            .page(k * 0x1000, Some("pc.ram"))
            .page(0x5000, None)
            .eos()
            .footer(2)
            .eof()
            .colo(ColoMessage::VmstateSize, dev.len() as u64)
            .bytes(&dev);
    }
    s
}

fn decode(dir: Direction, bytes: &[u8], chunk: usize) -> Vec<Event> {
    let mut d = QemuDecoder::new(dir);
    let mut out = Vec::new();
    for c in bytes.chunks(chunk.max(1)) {
        d.push(c, &mut out);
    }
    d.finish(&mut out);
    out
}

fn items(events: &[Event]) -> Vec<(u64, u64, &'static str, &QemuInfo)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Item(i) => match (&i.kind, &i.info) {
                (ItemKind::Qemu(k), Info::Qemu(q)) => Some((i.offset, i.wire_len, k.name(), &**q)),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn names(events: &[Event]) -> Vec<&'static str> {
    items(events).into_iter().map(|i| i.2).collect()
}

fn diags(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Diagnostic(d) => Some(d.to_string()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_plain_migration_decodes_item_by_item() {
    let s = plain().0;
    let ev = decode(Direction::Forward, &s, s.len());
    assert!(diags(&ev).is_empty(), "{:?}", diags(&ev));
    assert_eq!(
        names(&ev),
        [
            "QEVM",
            "CONFIGURATION",
            "OPEN_RETURN_PATH",
            "PING",
            "SECTION_START",
            "SECTION_PART",
            "SECTION_END",
            "SECTION_FULL",
            "SECTION_FULL",
            "EOF",
            "VMDESCRIPTION"
        ]
    );
    let it = items(&ev);
    // items tile the stream
    let mut at = 0;
    for (off, len, name, _) in &it {
        assert_eq!(*off, at, "{name} starts where the previous item ended");
        at += len;
    }
    assert_eq!(at, s.len() as u64);
    match it[1].3 {
        QemuInfo::Configuration { machine, .. } => assert_eq!(machine, "pc-i440fx-7.2"),
        x => panic!("{x:?}"),
    }
    assert!(matches!(
        it[3].3,
        QemuInfo::Command {
            cmd: 2,
            value: Some(1),
            ..
        }
    ));
    let QemuInfo::Section(start) = it[4].3 else {
        panic!()
    };
    let r = start.ram.as_ref().unwrap();
    assert_eq!(r.mem_size, Some(80 << 20));
    assert_eq!((r.pages, r.zero_pages, r.eos), (0, 0, true));
    assert_eq!(r.blocks[0].name, "pc.ram");
    assert_eq!(r.blocks[1].size, Some(16 << 20));
    let QemuInfo::Section(part) = it[5].3 else {
        panic!()
    };
    let r = part.ram.as_ref().unwrap();
    assert_eq!((r.pages, r.zero_pages, r.new_passes), (2, 2, 1));
    // page with "pc.ram", zero page, page, zero page with "vga.vram", EOS
    assert_eq!(
        part.body_len,
        (8 + 7 + 4096) + 9 + (8 + 4096) + (8 + 9 + 1) + 8
    );
    let QemuInfo::Section(end) = it[6].3 else {
        panic!()
    };
    assert_eq!(
        end.ram.as_ref().unwrap().new_passes,
        1,
        "page 0x1000 again: a new pass"
    );
    let QemuInfo::Section(timer) = it[7].3 else {
        panic!()
    };
    assert_eq!(
        (
            timer.idstr.as_str(),
            timer.version_id,
            timer.body_len,
            timer.footer
        ),
        ("timer", Some(2), TIMER_BODY.len() as u64, true),
        "0x7e bytes inside the body that are no footer stay in the body"
    );
    let QemuInfo::Section(pm) = it[8].3 else {
        panic!()
    };
    assert_eq!(pm.idstr, "0000:00:01.3/piix4_pm");
    assert!(matches!(
        it[10].3,
        QemuInfo::VmDescription {
            page_size: Some(4096),
            devices: Some(2),
            inspected: true,
            ..
        }
    ));
}

#[test]
fn chunking_does_not_change_the_events() {
    for s in [plain().0, colo().0] {
        let whole = decode(Direction::Forward, &s, s.len());
        for chunk in [1, 3, 7, 64, 4095, 4097] {
            assert_eq!(
                decode(Direction::Forward, &s, chunk),
                whole,
                "chunks of {chunk}"
            );
        }
    }
}

#[test]
fn colo_checkpoints_decode_message_by_message() {
    let s = colo().0;
    let ev = decode(Direction::Forward, &s, 1000);
    assert!(diags(&ev).is_empty(), "{:?}", diags(&ev));
    let n = names(&ev);
    let first = n.iter().position(|x| *x == "CHECKPOINT_REQUEST").unwrap();
    assert_eq!(
        n[first..first + 11],
        [
            "CHECKPOINT_REQUEST",
            "VMSTATE_SEND",
            "SECTION_END",
            "EOF",
            "VMSTATE_SIZE",
            "SECTION_FULL",
            "SECTION_FULL",
            "EOF",
            "DEVICE_STATE",
            "CHECKPOINT_REQUEST",
            "VMSTATE_SEND",
        ]
    );
    assert_eq!(n.iter().filter(|x| **x == "DEVICE_STATE").count(), 2);
    let it = items(&ev);
    let dev = device_state().len() as u64;
    let size = it
        .iter()
        .find(|i| i.2 == "VMSTATE_SIZE")
        .map(|i| (i.1, i.3.clone()))
        .unwrap();
    assert_eq!(
        size,
        (
            12,
            QemuInfo::Colo {
                message: ColoMessage::VmstateSize,
                size: Some(dev)
            }
        )
    );
    let state = it.iter().find(|i| i.2 == "DEVICE_STATE").unwrap();
    assert_eq!(state.1, dev);
    assert_eq!(
        state.3,
        &QemuInfo::DeviceState {
            size: dev,
            sections: 2,
            complete: true
        }
    );
    let ram = it
        .iter()
        .skip_while(|i| i.2 != "VMSTATE_SEND")
        .find(|i| i.2 == "SECTION_END")
        .unwrap();
    let QemuInfo::Section(ram) = ram.3 else {
        panic!()
    };
    assert_eq!(ram.ram.as_ref().unwrap().pages, 2);
    let eofs: Vec<_> = it
        .iter()
        .filter_map(|i| match i.3 {
            QemuInfo::Eof { closes } => Some(*closes),
            _ => None,
        })
        .collect();
    assert_eq!(
        eofs,
        [
            "migration",
            "checkpoint ram",
            "device state",
            "checkpoint ram",
            "device state"
        ]
    );
}

#[test]
fn the_reverse_direction_carries_return_path_and_colo_messages() {
    let rp = [0u8, 2, 0, 4, 0, 0, 0, 1, 0, 1, 0, 4, 0, 0, 0, 0];
    let ev = decode(Direction::Reverse, &rp, 3);
    assert_eq!(names(&ev), ["RP_PONG", "RP_SHUT"]);
    assert!(diags(&ev).is_empty());
    let colo: Vec<u8> = [0u32, 2, 5, 6, 2]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect();
    let ev = decode(Direction::Reverse, &colo, 5);
    assert_eq!(
        names(&ev),
        [
            "CHECKPOINT_READY",
            "CHECKPOINT_REPLY",
            "VMSTATE_RECEIVED",
            "VMSTATE_LOADED",
            "CHECKPOINT_REPLY"
        ]
    );
    assert!(diags(&ev).is_empty());
    // QEMU 7.2 with the return path and COLO: READY after a PONG
    let mut both = rp[..8].to_vec();
    both.extend_from_slice(&[0, 0, 0, 0]);
    let ev = decode(Direction::Reverse, &both, 64);
    assert_eq!(names(&ev), ["RP_PONG", "CHECKPOINT_READY"]);
    let d = diags(&ev);
    assert_eq!(d.len(), 1);
    assert!(d[0].contains("return-path message of type 0"), "{d:?}");
}

#[test]
fn a_gap_inside_a_page_loses_no_record() {
    let s = colo().0;
    // the first page's data of the first checkpoint
    let send = 4 + s
        .windows(8)
        .position(|w| w == [0, 0, 0, 1, 0, 0, 0, 3])
        .unwrap();
    let page_data = send + 4 + 5 + 8 + 1 + 6 + 100;
    let mut d = QemuDecoder::new(Direction::Forward);
    let mut ev = Vec::new();
    d.push(&s[..page_data], &mut ev);
    d.gap(1000, &mut ev);
    d.push(&s[page_data + 1000..], &mut ev);
    d.finish(&mut ev);
    assert_eq!(names(&ev), names(&decode(Direction::Forward, &s, s.len())));
    let lost: Vec<u64> = ev
        .iter()
        .filter_map(|e| e.as_item())
        .filter(|i| i.lost > 0)
        .map(|i| i.lost)
        .collect();
    assert_eq!(lost, [1000], "the RAM section holding the gap says so");
}

#[test]
fn a_gap_inside_a_device_section_skips_to_the_end_of_the_device_state() {
    let s = colo().0;
    let size = ColoMessage::VmstateSize.emit(device_state().len() as u64);
    let size_at = s.windows(12).position(|w| w == size).unwrap();
    let cut = size_at + 12 + 10;
    let mut d = QemuDecoder::new(Direction::Forward);
    let mut ev = Vec::new();
    d.push(&s[..cut], &mut ev);
    d.gap(5, &mut ev);
    d.push(&s[cut + 5..], &mut ev);
    d.finish(&mut ev);
    let states: Vec<_> = items(&ev)
        .into_iter()
        .filter(|i| i.2 == "DEVICE_STATE")
        .map(|i| i.3.clone())
        .collect();
    assert_eq!(states.len(), 2);
    assert!(matches!(
        states[0],
        QemuInfo::DeviceState {
            complete: false,
            ..
        }
    ));
    assert!(matches!(
        states[1],
        QemuInfo::DeviceState {
            complete: true,
            sections: 2,
            ..
        }
    ));
    assert_eq!(
        names(&ev)
            .iter()
            .filter(|n| **n == "CHECKPOINT_REQUEST")
            .count(),
        2
    );
}

#[test]
fn a_capture_that_starts_mid_stream_finds_the_next_checkpoint() {
    let s = colo().0;
    let second = s
        .windows(8)
        .rposition(|w| w == [0, 0, 0, 1, 0, 0, 0, 3])
        .unwrap();
    for start in [second - 30, second - 1, second + 4] {
        let mut d = QemuDecoder::mid_stream(Direction::Forward, start as u64);
        let mut ev = Vec::new();
        d.push(&s[start..], &mut ev);
        d.finish(&mut ev);
        let resync = ev.iter().find_map(|e| match e {
            Event::Resync { offset, anchor, .. } => Some((*offset, *anchor)),
            _ => None,
        });
        // REQUEST and VMSTATE_SEND together anchor; VMSTATE_SEND alone too
        let (at, mut want) = if start <= second {
            (second, vec!["CHECKPOINT_REQUEST"])
        } else {
            (second + 4, vec![])
        };
        assert_eq!(
            resync,
            Some((at as u64, Anchor::QemuMessage)),
            "from {start}"
        );
        want.extend([
            "VMSTATE_SEND",
            "SECTION_END",
            "EOF",
            "VMSTATE_SIZE",
            "SECTION_FULL",
            "SECTION_FULL",
            "EOF",
            "DEVICE_STATE",
        ]);
        assert_eq!(names(&ev), want, "from {start}");
    }
}

/// Regression: a gap that ends inside a checkpoint's RAM (real captures put
/// RAM, EOF, VMSTATE_SIZE and the device state in one segment) skipped the
/// next checkpoint's REQUEST, which is no anchor alone; REQUEST followed
/// by VMSTATE_SEND and a RAM section is one.
#[test]
fn a_gap_before_a_request_keeps_the_request() {
    let s = colo().0;
    let second = s
        .windows(8)
        .rposition(|w| w == [0, 0, 0, 1, 0, 0, 0, 3])
        .unwrap();
    // lose from inside the first checkpoint's RAM to 20 bytes before REQUEST
    let first_send = 4 + s
        .windows(8)
        .position(|w| w == [0, 0, 0, 1, 0, 0, 0, 3])
        .unwrap();
    let from = first_send + 100;
    let to = second - 20;
    let mut d = QemuDecoder::new(Direction::Forward);
    let mut ev = Vec::new();
    d.push(&s[..from], &mut ev);
    d.gap((to - from) as u64, &mut ev);
    d.push(&s[to..], &mut ev);
    d.finish(&mut ev);
    let resync = ev.iter().find_map(|e| match e {
        Event::Resync { offset, .. } => Some(*offset),
        _ => None,
    });
    assert_eq!(resync, Some(second as u64));
    assert_eq!(
        names(&ev)
            .iter()
            .filter(|n| **n == "CHECKPOINT_REQUEST")
            .count(),
        2
    );
}

/// A mid-stream hunt through megabytes of other traffic keeps only the
/// undecided tail of its window (every probing connection runs one).
#[test]
fn a_hunt_through_other_traffic_holds_little() {
    let mut d = QemuDecoder::mid_stream(Direction::Forward, 0);
    let mut ev = Vec::new();
    let mut x = 0x1234_5678u32;
    let junk: Vec<u8> = (0..1 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect();
    for _ in 0..4 {
        d.push(&junk, &mut ev);
        assert!(
            d.buffered_capacity() < 64 << 10,
            "{}",
            d.buffered_capacity()
        );
    }
    assert!(d.hunting());
    assert!(ev.iter().all(|e| e.as_item().is_none()));
}

#[test]
fn a_truncated_stream_says_where() {
    let s = plain().0;
    let cut = s.len() - 100;
    let ev = decode(Direction::Forward, &s[..cut], 512);
    let d = diags(&ev);
    assert!(d.iter().any(|m| m.contains("stream ends inside")), "{d:?}");
    assert!(ev
        .iter()
        .any(|e| matches!(e, Event::Diagnostic(x) if x.kind == DiagKind::Truncated)));
}

#[test]
fn a_stream_that_is_not_qemu_is_said_to_be_so() {
    let ev = decode(Direction::Forward, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 4);
    assert!(diags(&ev)[0].contains("does not open with \"QEVM\""));
    assert!(items(&ev).is_empty());
}

#[test]
fn a_multifd_channel_decodes_its_packets() {
    let mut b = vec![0x11, 0x22, 0x33, 0x44, 0, 0, 0, 1];
    b.extend_from_slice(&[0; 16]);
    b.push(1);
    b.extend_from_slice(&[0; 39]);
    assert_eq!(b.len(), wire::MULTIFD_INIT_LEN);
    let mut p = vec![0x11, 0x22, 0x33, 0x44, 0, 0, 0, 1];
    p.extend_from_slice(&0u32.to_be_bytes()); // flags
    p.extend_from_slice(&128u32.to_be_bytes()); // pages_alloc
    p.extend_from_slice(&2u32.to_be_bytes()); // normal_pages
    p.extend_from_slice(&(2 * PAGE as u32).to_be_bytes());
    p.extend_from_slice(&7u64.to_be_bytes());
    p.extend_from_slice(&[0; 32]);
    let mut rb = b"pc.ram".to_vec();
    rb.resize(256, 0);
    p.extend_from_slice(&rb);
    assert_eq!(p.len(), wire::MULTIFD_PACKET_LEN);
    p.extend_from_slice(&[0; 128 * 8]); // an offset slot per allocated page
    p.extend_from_slice(&[0xaa; 2 * PAGE]);
    b.extend_from_slice(&p);
    let ev = decode(Direction::Forward, &b, 100);
    assert_eq!(names(&ev), ["MULTIFD_INIT", "MULTIFD_PACKET"]);
    assert!(matches!(
        items(&ev)[1].3,
        QemuInfo::MultifdPacket {
            pages: 2,
            packet_num: 7,
            ..
        }
    ));
    assert_eq!(QemuKind::MultifdInit.name(), "MULTIFD_INIT");
}

proptest::proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048), chunk in 1usize..64, fwd in proptest::prelude::any::<bool>()) {
        let dir = if fwd { Direction::Forward } else { Direction::Reverse };
        let mut d = QemuDecoder::new(dir);
        let mut out = Vec::new();
        let mut s = b"QEVM\0\0\0\x03".to_vec();
        s.extend_from_slice(&data);
        for c in s.chunks(chunk) {
            d.push(c, &mut out);
        }
        d.gap(10, &mut out);
        d.push(&data, &mut out);
        d.finish(&mut out);
        proptest::prop_assert!(d.buffered_capacity() < 4 << 20);
    }

    #[test]
    fn damage_to_a_colo_stream_never_panics(pos in 0usize..40_000, byte in proptest::prelude::any::<u8>(), chunk in 1usize..5000) {
        let mut s = colo().0;
        let p = pos % s.len();
        s[p] = byte;
        let ev = decode(Direction::Forward, &s, chunk);
        proptest::prop_assert!(!ev.is_empty());
    }
}

/// The RAM records and configuration parts the real captures do not show:
/// XBZRLE, compressed pages, MULTIFD_FLUSH, and the configuration's
/// target-page-bits, capabilities and uuid subsections.
#[test]
fn rarer_records_decode_from_hand_written_bytes() {
    let mut config = vec![0x07, 0, 0, 0, 2, b'p', b'c'];
    // target-page-bits 12
    config.push(0x05);
    let name = b"configuration/target-page-bits";
    config.push(name.len() as u8);
    config.extend_from_slice(name);
    config.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 12]);
    // capabilities: 1, "x-ignore-shared"
    config.push(0x05);
    let name = b"configuration/capabilities";
    config.push(name.len() as u8);
    config.extend_from_slice(name);
    config.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 15]);
    config.extend_from_slice(b"x-ignore-shared");
    // uuid
    config.push(0x05);
    let name = b"configuration/uuid";
    config.push(name.len() as u8);
    config.extend_from_slice(name);
    config.extend_from_slice(&[0, 0, 0, 1]);
    config.extend_from_slice(&[0xab; 16]);
    let mut ram = Vec::new();
    // XBZRLE page of pc.ram: flags 0x40, block, u8 flags 1, be16 len 5, data
    ram.extend_from_slice(&(0x3000u64 | 0x40).to_be_bytes());
    ram.extend_from_slice(&[
        6, b'p', b'c', b'.', b'r', b'a', b'm', 1, 0, 5, 9, 9, 9, 9, 9,
    ]);
    // compressed page, CONTINUE: be32 len 7, data
    ram.extend_from_slice(&(0x4000u64 | 0x100 | 0x20).to_be_bytes());
    ram.extend_from_slice(&[0, 0, 0, 7, 1, 2, 3, 4, 5, 6, 7]);
    // MULTIFD_FLUSH, then EOS
    ram.extend_from_slice(&0x200u64.to_be_bytes());
    ram.extend_from_slice(&0x10u64.to_be_bytes());
    let s = Stream::default()
        .header()
        .bytes(&config)
        .named(SectionType::Start, 2, "ram", 4)
        .bytes(&ram)
        .footer(2)
        .command(99, &[1, 2])
        .eof()
        .0;
    let ev = decode(Direction::Forward, &s, 3);
    assert_eq!(
        names(&ev),
        ["QEVM", "CONFIGURATION", "SECTION_START", "COMMAND", "EOF"]
    );
    let it = items(&ev);
    assert_eq!(
        it[1].3,
        &QemuInfo::Configuration {
            machine: "pc".into(),
            target_page_bits: Some(12),
            capabilities: vec!["x-ignore-shared".into()],
            uuid: Some("ab".repeat(16)),
        }
    );
    let QemuInfo::Section(sec) = it[2].3 else {
        panic!()
    };
    let r = sec.ram.as_ref().unwrap();
    assert_eq!(
        (
            r.pages,
            r.xbzrle_pages,
            r.compressed_pages,
            r.multifd_flushes,
            r.zero_pages
        ),
        (2, 1, 1, 1, 0)
    );
    assert_eq!(r.blocks[0].pages, 2);
    let d = diags(&ev);
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(d[0].contains("unknown command 99"), "{d:?}");
}

/// A machine type without section footers (before QEMU 2.x): a RAM
/// section ends at EOS and the next item follows; no footer is invented.
#[test]
fn a_ram_section_without_a_footer_ends_at_eos() {
    let s = Stream::default()
        .header()
        .named(SectionType::Start, 2, "ram", 4)
        .mem_size(&[("pc.ram", 1 << 20)])
        .eos()
        .section(SectionType::End, 2)
        .zero(0, Some("pc.ram"))
        .eos()
        .eof()
        .0;
    let ev = decode(Direction::Forward, &s, 5);
    assert_eq!(names(&ev), ["QEVM", "SECTION_START", "SECTION_END", "EOF"]);
    let QemuInfo::Section(end) = items(&ev)[2].3 else {
        panic!()
    };
    assert!(!end.footer);
    assert_eq!(end.ram.as_ref().unwrap().zero_pages, 1);
}

/// Return-path messages other than PONG and SHUT, and a reverse stream
/// that starts with garbage: skipped to the next message, said once.
#[test]
fn return_path_requests_and_garbage_on_the_reverse_direction() {
    let mut b = vec![0xff, 0xee, 0xdd];
    // REQ_PAGES: be64 start, be32 len
    b.extend_from_slice(&[0, 4, 0, 12]);
    b.extend_from_slice(&0x1000u64.to_be_bytes());
    b.extend_from_slice(&4096u32.to_be_bytes());
    // RESUME_ACK
    b.extend_from_slice(&[0, 6, 0, 4, 0, 0, 0, 1]);
    let ev = decode(Direction::Reverse, &b, 2);
    assert_eq!(names(&ev), ["RP_REQ_PAGES", "RP_RESUME_ACK"]);
    assert_eq!(diags(&ev).len(), 1);
    assert!(ev
        .iter()
        .any(|e| matches!(e, Event::Resync { skipped: 3, .. })));
}

/// Regression: a capture that begins inside a COLO device state anchors on
/// its next FULL header; the EOF after it is not the migration's end.
#[test]
fn an_eof_after_a_resync_is_not_taken_for_the_migrations_end() {
    let s = colo().0;
    let send = s
        .windows(8)
        .position(|w| w == [0, 0, 0, 1, 0, 0, 0, 3])
        .unwrap();
    let apic = send
        + s[send..]
            .windows(5)
            .position(|w| w == b"\x04\0\0\0\x05")
            .unwrap();
    let start = apic - 3;
    let mut d = QemuDecoder::mid_stream(Direction::Forward, start as u64);
    let mut ev = Vec::new();
    d.push(&s[start..], &mut ev);
    d.finish(&mut ev);
    let it = items(&ev);
    assert_eq!(it[0].2, "SECTION_FULL");
    assert_eq!(
        it[1].3,
        &QemuInfo::Eof {
            closes: "what the capture began inside"
        }
    );
    assert_eq!(it[2].2, "CHECKPOINT_REQUEST");
}
