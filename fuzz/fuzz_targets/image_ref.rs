//! Fuzzes the reference parser: it never panics, and what it accepts reparses to itself.
#![no_main]

use imagegate::image_ref::ImageRef;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(r) = ImageRef::parse(s) {
        let canonical = r.canonical();
        let again = ImageRef::parse(&canonical).expect("a canonical form parses");
        assert_eq!(again.canonical(), canonical);
    }
});
