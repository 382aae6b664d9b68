//! Tag constraints of dependency specs, with MCP Mesh's operators and scores: a plain tag is
//! required (+5 when present), `+tag` is preferred (+10 when present, no penalty when absent),
//! `-tag` excludes every provider that carries it.
//!
//! MCP Mesh also accepts nested lists as OR groups; the contract's `repeated string tags` has no
//! way to express them, so they are not supported here.

use std::fmt;

use crate::validate::shown;

/// Score a provider earns for each required tag (all of them are present, or it is excluded).
pub const REQUIRED_TAG_SCORE: i32 = 5;
/// Score a provider earns for each preferred tag it carries.
pub const PREFERRED_TAG_SCORE: i32 = 10;

/// The parsed tag constraints of one dependency spec. Duplicates are dropped so a repeated `+tag`
/// cannot inflate the score.
///
/// ```
/// # use switchboard_registry::resolution::{TagConstraints, TagVerdict};
/// let tags: Vec<String> = ["eu", "+gpu", "-beta"].map(String::from).into();
/// let constraints = TagConstraints::parse(&tags)?;
/// let provider: Vec<String> = ["eu", "gpu"].map(String::from).into();
/// assert_eq!(constraints.evaluate(&provider), TagVerdict::Match { score: 15 });
/// # Ok::<(), String>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagConstraints {
    /// Plain tags: the provider must carry every one.
    pub required: Vec<String>,
    /// `+tag`: the provider scores for each one it carries.
    pub preferred: Vec<String>,
    /// `-tag`: the provider must carry none of them.
    pub excluded: Vec<String>,
}

/// How a provider's tags fare against [`TagConstraints`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagVerdict {
    /// Every required tag is present and no excluded one.
    Match {
        /// [`REQUIRED_TAG_SCORE`] per required tag plus [`PREFERRED_TAG_SCORE`] per preferred tag
        /// carried.
        score: i32,
    },
    /// This required tag is absent.
    MissingRequired(String),
    /// The provider carries this excluded tag.
    Excluded(String),
}

/// [`TagVerdict`] borrowing the tag, so resolution does not allocate for rejected providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict<'a> {
    Match { score: i32 },
    MissingRequired(&'a str),
    Excluded(&'a str),
}

// === impl TagConstraints ===

impl TagConstraints {
    /// Parses the `tags` of a dependency spec. Each is `[a-z0-9][a-z0-9_.-]{0,63}` after an
    /// optional `+` or `-`; a tag both excluded and required or preferred is rejected, since no
    /// provider could ever satisfy the author's intent.
    pub fn parse(tags: &[String]) -> Result<Self, String> {
        let mut parsed = Self::default();
        for raw in tags {
            let (list, tag) = match raw.as_bytes().first() {
                Some(b'+') => (&mut parsed.preferred, &raw[1..]),
                Some(b'-') => (&mut parsed.excluded, &raw[1..]),
                _ => (&mut parsed.required, raw.as_str()),
            };
            if !is_valid_tag(tag) {
                return Err(format!(
                    "bad tag constraint {}: a tag is `[a-z0-9][a-z0-9_.-]{{0,63}}`, \
                     optionally after `+` (preferred) or `-` (excluded)",
                    shown(raw)
                ));
            }
            if !list.iter().any(|t| t == tag) {
                list.push(tag.to_owned());
            }
        }
        if let Some(tag) = parsed.excluded.iter().find(|t| parsed.required.contains(t)) {
            return Err(format!("bad tag constraints: tag {tag:?} is both required and excluded"));
        }
        if let Some(tag) = parsed.excluded.iter().find(|t| parsed.preferred.contains(t)) {
            return Err(format!("bad tag constraints: tag {tag:?} is both preferred and excluded"));
        }
        Ok(parsed)
    }

    /// True when there is no constraint: every provider matches with score 0.
    pub fn is_empty(&self) -> bool {
        self.required.is_empty() && self.preferred.is_empty() && self.excluded.is_empty()
    }

    /// Judges a provider's tags. Exclusion is checked first: a provider carrying a forbidden tag
    /// is reported for that even when it also misses a required one.
    pub fn evaluate(&self, provider_tags: &[String]) -> TagVerdict {
        match self.check(provider_tags) {
            Verdict::Match { score } => TagVerdict::Match { score },
            Verdict::MissingRequired(tag) => TagVerdict::MissingRequired(tag.to_owned()),
            Verdict::Excluded(tag) => TagVerdict::Excluded(tag.to_owned()),
        }
    }

    /// [`Self::evaluate`] without allocating.
    pub(super) fn check(&self, provider_tags: &[String]) -> Verdict<'_> {
        let carries = |tag: &String| provider_tags.contains(tag);
        if let Some(tag) = self.excluded.iter().find(|t| carries(t)) {
            return Verdict::Excluded(tag);
        }
        if let Some(tag) = self.required.iter().find(|t| !carries(t)) {
            return Verdict::MissingRequired(tag);
        }
        let required = self.required.len();
        let preferred = self.preferred.iter().filter(|t| carries(t)).count();
        let score = score_of(required, REQUIRED_TAG_SCORE)
            .saturating_add(score_of(preferred, PREFERRED_TAG_SCORE));
        Verdict::Match { score }
    }

    /// The constraints that can exclude a provider (required and excluded tags), as written in a
    /// spec: `eu, -beta`.
    pub(super) fn filters(&self) -> impl fmt::Display + '_ {
        Written { required: &self.required, preferred: &[], excluded: &self.excluded }
    }
}

impl fmt::Display for TagConstraints {
    /// The constraints as written in a spec: `eu, +gpu, -beta`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let written = Written {
            required: &self.required,
            preferred: &self.preferred,
            excluded: &self.excluded,
        };
        written.fmt(f)
    }
}

/// Tag lists rendered with their operators.
struct Written<'a> {
    required: &'a [String],
    preferred: &'a [String],
    excluded: &'a [String],
}

impl fmt::Display for Written<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let required = self.required.iter().map(|t| ("", t));
        let preferred = self.preferred.iter().map(|t| ("+", t));
        let excluded = self.excluded.iter().map(|t| ("-", t));
        for (i, (op, tag)) in required.chain(preferred).chain(excluded).enumerate() {
            let separator = if i == 0 { "" } else { ", " };
            write!(f, "{separator}{op}{tag}")?;
        }
        Ok(())
    }
}

/// `count * points`, saturating: tag lists are bounded by registration, but resolution must never
/// panic on whatever it is handed.
fn score_of(count: usize, points: i32) -> i32 {
    i32::try_from(count).unwrap_or(i32::MAX).saturating_mul(points)
}

/// `[a-z0-9][a-z0-9_.-]{0,63}`, the syntax of names, tags and capabilities.
fn is_valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    let lead = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let rest = |b: &u8| lead(b) || matches!(b, b'_' | b'.' | b'-');
    matches!(bytes.first(), Some(b) if lead(b)) && bytes.len() <= 64 && bytes[1..].iter().all(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(tags: &[&str]) -> Vec<String> {
        tags.iter().map(|t| (*t).to_owned()).collect()
    }

    fn parse(tags: &[&str]) -> Result<TagConstraints, String> {
        TagConstraints::parse(&strings(tags))
    }

    #[test]
    fn parses_operators_and_drops_duplicates() {
        let parsed = parse(&["eu", "+fast", "-beta", "+fast", "eu", "1.x_y-z"]).unwrap();
        assert_eq!(parsed.required, ["eu", "1.x_y-z"]);
        assert_eq!(parsed.preferred, ["fast"]);
        assert_eq!(parsed.excluded, ["beta"]);
        assert_eq!(parsed.to_string(), "eu, 1.x_y-z, +fast, -beta");
        assert_eq!(parsed.filters().to_string(), "eu, 1.x_y-z, -beta");
        assert!(parse(&[]).unwrap().is_empty());
        assert!(parse(&[&"a".repeat(64)]).is_ok());
    }

    #[test]
    fn rejects_bad_and_contradictory_tags() {
        let long = "a".repeat(65);
        for bad in ["", "+", "-", "EU", "+-x", "--x", "a b", "_eu", "é", long.as_str()] {
            let error = parse(&[bad]).unwrap_err();
            assert!(error.starts_with(&format!("bad tag constraint {}: ", shown(bad))), "{error}");
        }
        let error = parse(&[&format!("+{}", "x".repeat(10_000))]).unwrap_err();
        assert!(error.len() < 300, "a long tag is quoted cut short: {error}");
        assert_eq!(
            parse(&["eu", "-eu"]).unwrap_err(),
            "bad tag constraints: tag \"eu\" is both required and excluded"
        );
        assert_eq!(
            parse(&["-gpu", "+gpu"]).unwrap_err(),
            "bad tag constraints: tag \"gpu\" is both preferred and excluded"
        );
    }

    #[test]
    fn evaluates_with_mcp_mesh_scores() {
        let constraints = parse(&["eu", "+fast", "+gpu", "-beta"]).unwrap();
        let table = [
            (&["eu"][..], TagVerdict::Match { score: 5 }),
            (&["eu", "fast"], TagVerdict::Match { score: 15 }),
            (&["gpu", "eu", "fast", "x"], TagVerdict::Match { score: 25 }),
            (&["fast"], TagVerdict::MissingRequired("eu".to_owned())),
            (&["eu", "beta"], TagVerdict::Excluded("beta".to_owned())),
            // Exclusion is reported first.
            (&["beta"], TagVerdict::Excluded("beta".to_owned())),
        ];
        for (provider, want) in table {
            assert_eq!(constraints.evaluate(&strings(provider)), want, "{provider:?}");
        }
        assert_eq!(parse(&[]).unwrap().evaluate(&[]), TagVerdict::Match { score: 0 });
        assert_eq!(parse(&["+x"]).unwrap().evaluate(&[]), TagVerdict::Match { score: 0 });
    }
}
