//! Any text must parse to a configuration or a `ConfigError`, never panic.
//! Run with `cargo fuzz run config_parse` from the repository root.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = natrix::config::parse_str(text);
    }
});
