//! The client protocol parser must never panic, and must never claim to
//! have used more bytes than it was given, whatever a client sends.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natrix::proto::{parse, Limits, Parsed};

fuzz_target!(|data: &[u8]| {
    let lim = Limits { max_control_line: 4096, max_payload: 1 << 20, headers: data.first().is_some_and(|b| b & 1 == 1) };
    let mut pos = 0;
    while pos < data.len() {
        match parse(&data[pos..], &lim) {
            Ok(Parsed::Op(_, used)) => {
                assert!(used > 0 && pos + used <= data.len());
                pos += used;
            }
            Ok(Parsed::Incomplete { .. }) | Err(_) => break,
        }
    }
});
