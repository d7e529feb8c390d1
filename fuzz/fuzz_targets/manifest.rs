//! Fuzzes YAML extraction, bytes in, findings out: it never panics, and every location it
//! reports lies inside the file.
#![no_main]

use std::path::Path;

use imagegate::manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let scan = manifest::scan(0, Path::new("fuzz.yaml"), data.to_vec());
    let len = scan.source.text.len();
    for o in &scan.occurrences {
        assert!(o.location.start <= o.location.end && o.location.end <= len);
        let _ = scan.source.position(o.location.start);
    }
    for f in &scan.findings {
        if let Some(l) = f.location {
            assert!(l.start <= len);
        }
    }
});
