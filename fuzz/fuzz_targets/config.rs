//! Fuzzes the config loader: any bytes give a config or a positioned error, never a panic.
#![no_main]

use std::path::Path;

use imagegate::config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(e) = config::parse(Path::new(".imagegate.yaml"), text) {
        assert!(e.to_string().starts_with(".imagegate.yaml:"));
    }
});
