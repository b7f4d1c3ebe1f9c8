#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| smds::fuzzing::asn1_binding(data));
