#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shadowdiff_fuzz::route_key(data));
