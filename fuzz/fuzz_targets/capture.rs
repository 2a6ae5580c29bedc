//! Arbitrary bytes as a capture file (pcap, pcapng, gzip-compressed either):
//! every packet is read and sliced down to TCP.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use migscope::capture::{link, FileSource};

fuzz_target!(|data: &[u8]| {
    let reader = Box::new(Cursor::new(data.to_vec()));
    let Ok(mut src) = FileSource::from_reader(reader, "fuzz") else {
        return;
    };
    let mut errors = 0usize;
    loop {
        match src.next_packet() {
            Ok(Some(p)) => {
                assert!(p.data.len() <= data.len() * 1100 + (1 << 20));
                let _ = link::parse(p.link, p.data, p.orig_len);
            }
            Ok(None) => break,
            Err(e) => {
                let _ = e.to_string();
                if e.ends_reading() {
                    break;
                }
                errors += 1;
                // A non-fatal error must consume input: a reader that keeps
                // failing at the same place would loop for ever.
                assert!(errors <= data.len() + 16, "non-fatal errors do not end");
            }
        }
    }
    // After the end, the source stays at the end.
    assert!(matches!(src.next_packet(), Ok(None)));
});
