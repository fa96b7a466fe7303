//! Fuzzes the manifest loader: any bytes, read as a manifest file, give a model or
//! diagnostics, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = sextant::manifest::load_text("fuzz.yaml", text);
    }
});
