//! The registry's parse of an `authorization` header: whatever a caller
//! sends, the parse answers a non-empty secret without surrounding spaces,
//! or refuses with a message that says what was expected — never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_registry::access::parse_bearer;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match parse_bearer(text) {
        Ok(secret) => {
            assert!(!secret.is_empty());
            assert_eq!(secret, secret.trim());
            assert!(text.to_ascii_lowercase().trim_start().starts_with("bearer"));
        }
        Err(error) => assert!(error.to_string().contains("expected `Bearer <token>`"), "{error}"),
    }
});
