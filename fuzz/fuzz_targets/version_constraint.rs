//! Version constraints and provider versions, as agents write them in
//! their registrations: the input is `constraint \n version`.
//!
//! Beyond "no panic": a constraint that parses parses again from its own
//! text to the same constraint, a version that parses prints as text that
//! parses to the same version, and matching the text of a parsed version
//! agrees with matching the version.

#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_registry::resolution::{VersionConstraint, parse_version};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (constraint, version) = text.split_once('\n').unwrap_or((text, ""));
    let parsed_version = parse_version(version);
    if let Ok(parsed) = &parsed_version {
        assert_eq!(parse_version(&parsed.to_string()).as_ref(), Ok(parsed), "{version:?}");
    }
    let Ok(parsed) = VersionConstraint::parse(constraint) else { return };
    let again = VersionConstraint::parse(parsed.as_str()).expect("a parsed constraint reparses");
    assert_eq!(again, parsed, "{constraint:?}");
    let by_text = parsed.matches_text(version);
    if let Ok(version) = &parsed_version {
        assert_eq!(by_text, parsed.matches(version), "{constraint:?} on {version}");
    }
});
