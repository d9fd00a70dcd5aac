//! The proxy's request-head parser on arbitrary bytes: never panics, and a complete head is within
//! the limits and names a port.
#![no_main]

use codex_box::proxy::http::{parse, HeadLimits, Parsed};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = HeadLimits { max_head: 1024, max_headers: 16 };
    if let Ok(Parsed::Complete { request, len }) = parse(data, limits) {
        assert!(len <= data.len() && len <= limits.max_head);
        assert_ne!(request.port(), 0);
    }
});
