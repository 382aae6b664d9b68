//! Tag constraints of a dependency spec against a provider's tags: the
//! input is the spec's tags, one per line, then an empty line, then the
//! provider's tags.
//!
//! Beyond "no panic": the verdict is what the rules say. A match means
//! every required tag is present and no excluded one, and scores exactly
//! the required tags plus the preferred tags carried; a refusal names a tag
//! that really is missing or excluded.

#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_registry::resolution::{
    PREFERRED_TAG_SCORE, REQUIRED_TAG_SCORE, TagConstraints, TagVerdict,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (spec, provider) = text.split_once("\n\n").unwrap_or((text, ""));
    let lines = |part: &str| part.split('\n').map(str::to_owned).collect::<Vec<_>>();
    let (spec, provider) = (lines(spec), lines(provider));
    let Ok(constraints) = TagConstraints::parse(&spec) else { return };
    let has = |tag: &String| provider.contains(tag);
    match constraints.evaluate(&provider) {
        TagVerdict::Match { score } => {
            assert!(constraints.required.iter().all(has));
            assert!(!constraints.excluded.iter().any(has));
            let preferred = constraints.preferred.iter().filter(|t| has(t)).count();
            let expected = REQUIRED_TAG_SCORE * constraints.required.len() as i32
                + PREFERRED_TAG_SCORE * preferred as i32;
            assert_eq!(score, expected);
        }
        TagVerdict::MissingRequired(tag) => {
            assert!(constraints.required.contains(&tag) && !has(&tag));
        }
        TagVerdict::Excluded(tag) => assert!(constraints.excluded.contains(&tag) && has(&tag)),
    }
});
