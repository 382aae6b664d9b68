//! The request headers a caller controls that decide whether a request is
//! let in. Today: `Host` and `Origin` through the gateway's DNS-rebinding
//! guard, with allow-lists from the input too. The bearer-token parse
//! (`authorization: Bearer <secret>` and the secret's format) joins this
//! target once the token code is in the tree: feed it `authorization`
//! below, next to the guard.
//!
//! The input is the allowed hosts (one per line), a NUL byte, the allowed
//! origins, a NUL byte, then `name: value` header lines. Beyond "no panic":
//! loopback is always let in, and a refusal names the header it refused.

#![no_main]

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use switchboard_gateway::Guard;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |&b| b == 0);
    let (hosts, origins, headers) = (parts.next(), parts.next(), parts.next());
    let list = |part: Option<&[u8]>| -> Vec<String> {
        let text = String::from_utf8_lossy(part.unwrap_or_default());
        text.split('\n').filter(|s| !s.is_empty()).map(str::to_owned).collect()
    };
    let guard = Guard::new(&list(hosts), &list(origins));
    let mut map = HeaderMap::new();
    for line in headers.unwrap_or_default().split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        else {
            continue;
        };
        map.append(name, value);
    }
    if let Some(refusal) = guard.refusal(&map) {
        assert!(
            refusal.starts_with("forbidden: host ") || refusal.starts_with("forbidden: origin ")
        );
    }
    let mut loopback = HeaderMap::new();
    loopback.insert("host", HeaderValue::from_static("127.0.0.1:7700"));
    assert_eq!(guard.refusal(&loopback), None, "loopback is always let in");
});
