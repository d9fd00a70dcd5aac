//! The ClientHello SNI parser on arbitrary bytes: never panics, and a name it returns is a
//! lowercase host name.
#![no_main]

use codex_box::proxy::sni::{parse, Hello};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Hello::Complete { sni: Some(name) }) = parse(data) {
        assert!(!name.is_empty() && name.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"-._".contains(&c)));
    }
});
