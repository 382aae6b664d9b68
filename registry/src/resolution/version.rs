//! Version constraints of dependency specs and versions of providers.
//!
//! Agents are often written against MCP Mesh, whose registry checks versions with Go's Masterminds
//! constraints. The `semver` crate implements Cargo's dialect, which differs in ways a user would
//! trip over, so each constraint is translated into `semver` comparators first:
//! - comparators may be separated by spaces as well as commas (`>=1.2 <2`), and an operator may
//!   stand apart from its version (`>= 1.2`);
//! - alternatives are joined with `||`;
//! - a bare version means exactly that version (`1.2.3` is `=1.2.3`, as in npm and Masterminds;
//!   Cargo would read it as `^1.2.3`), and a bare partial version means every version it names
//!   (`1.2` is `1.2.x`);
//! - `!=` excludes a version, `a - b` is the inclusive range `>=a, <=b`, a leading `v` is ignored.
//!
//! Matching itself is the `semver` crate's, so pre-releases follow Cargo's rule: `1.3.0-beta`
//! matches only a constraint that names a pre-release of `1.3.0`. The empty constraint is the one
//! exception: it matches every version, pre-releases and unparsable ones included.

use std::cmp::Ordering;
use std::fmt;

use semver::{Comparator, Op, Version, VersionReq};

use crate::validate::shown;

/// A parsed version constraint of a dependency spec: alternatives joined by `||`, each a set of
/// comparators that must all hold.
///
/// ```
/// # use switchboard_registry::resolution::{VersionConstraint, parse_version};
/// let constraint = VersionConstraint::parse(">=1.2 <2 || ^3")?;
/// assert!(constraint.matches(&parse_version("1.4")?));
/// assert!(!constraint.matches(&parse_version("2.0.0")?));
/// assert!(constraint.matches(&parse_version("3.1.0")?));
/// # Ok::<(), String>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionConstraint {
    /// The constraint as written, trimmed: shown in reasons and compared with unparsable versions.
    text: String,
    /// Empty when the constraint is empty, which matches everything.
    alternatives: Vec<Alternative>,
}

/// One `||` alternative: `required` must match and no `forbidden` comparator (`!=`) may.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Alternative {
    required: VersionReq,
    forbidden: Vec<Comparator>,
}

/// The version of a provider as ranked by resolution: every semver version outranks every
/// unparsable one, so a provider with a proper version is preferred to one without.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ProviderVersion<'a> {
    /// The version text did not parse; compared as text so ranking stays deterministic.
    Unparsed(&'a str),
    /// A parsed version.
    Semver(Version),
}

// === impl VersionConstraint ===

impl VersionConstraint {
    /// Parses a constraint: `""` (any version), `>=1.2, <2`, `>=1.2 <2`, `^1.2`, `~1.2`, `1.2.3`,
    /// `=1.2.3`, `1.x`, `1.*`, `!=1.3.0`, `1.2 - 1.4`, and alternatives joined by `||`.
    ///
    /// The error names the part that failed: `bad version constraint ">=x": …`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Self::any());
        }
        let alternatives = text
            .split("||")
            .map(|alternative| {
                parse_alternative(alternative).map_err(|(part, why)| {
                    let part = if part.is_empty() { text } else { &part };
                    format!("bad version constraint {}: {why}", shown(part))
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { text: text.to_owned(), alternatives })
    }

    /// The constraint that matches every version.
    pub fn any() -> Self {
        Self { text: String::new(), alternatives: Vec::new() }
    }

    /// True for the empty constraint, which matches every version.
    pub fn is_any(&self) -> bool {
        self.alternatives.is_empty()
    }

    /// The constraint as written (trimmed); empty for [`VersionConstraint::any`].
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `version` satisfies at least one alternative.
    pub fn matches(&self, version: &Version) -> bool {
        self.is_any() || self.alternatives.iter().any(|alternative| alternative.matches(version))
    }

    /// Whether a provider's version text satisfies the constraint. Text that does not parse (see
    /// [`parse_version`]) matches only a constraint written exactly like it, as in MCP Mesh.
    pub fn matches_text(&self, version: &str) -> bool {
        match parse_version(version) {
            Ok(version) => self.matches(&version),
            Err(_) => self.admits(&ProviderVersion::Unparsed(version)),
        }
    }

    /// [`Self::matches_text`] for a version the caller already parsed.
    pub(super) fn admits(&self, version: &ProviderVersion<'_>) -> bool {
        match version {
            ProviderVersion::Semver(version) => self.matches(version),
            ProviderVersion::Unparsed(text) => self.is_any() || text.trim() == self.text,
        }
    }
}

impl fmt::Display for VersionConstraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_any() { f.write_str("*") } else { f.write_str(&self.text) }
    }
}

impl Alternative {
    fn matches(&self, version: &Version) -> bool {
        self.required.matches(version) && !self.forbidden.iter().any(|c| c.matches(version))
    }
}

/// Parses one `||` alternative. The error carries the offending part (empty: the whole text).
fn parse_alternative(text: &str) -> Result<Alternative, (String, String)> {
    let tokens: Vec<&str> =
        text.split(|c: char| c == ',' || c.is_whitespace()).filter(|t| !t.is_empty()).collect();
    if tokens.is_empty() {
        return Err((String::new(), "empty alternative".to_owned()));
    }
    let mut alternative = Alternative { required: VersionReq::STAR, forbidden: Vec::new() };
    let mut rest = tokens.as_slice();
    while let [first, tail @ ..] = rest {
        rest = tail;
        match rest {
            // A hyphen range: `1.2 - 1.4.5` is `>=1.2, <=1.4.5`.
            ["-", upper, tail @ ..] => {
                rest = tail;
                for (op, bound) in [(">=", *first), ("<=", *upper)] {
                    if operator_len(bound) > 0 {
                        let why = "a hyphen range takes bare versions";
                        return Err((format!("{first} - {upper}"), why.to_owned()));
                    }
                    push(&mut alternative, &format!("{op}{bound}"))?;
                }
            }
            // An operator standing apart from its version: `>= 1.2`.
            [version, tail @ ..] if operator_len(first) == first.len() => {
                rest = tail;
                push(&mut alternative, &format!("{first}{version}"))?;
            }
            _ => push(&mut alternative, first)?,
        }
    }
    Ok(alternative)
}

/// Adds one comparator, written as an operator (possibly none) and a version, to `alternative`.
fn push(alternative: &mut Alternative, comparator: &str) -> Result<(), (String, String)> {
    let bad = |why: String| (comparator.to_owned(), why);
    let (op, version) = comparator.split_at(operator_len(comparator));
    let version = version.strip_prefix(['v', 'V']).unwrap_or(version);
    if version.is_empty() {
        return Err(bad("missing version after operator".to_owned()));
    }
    // `*` alone adds no comparator: an alternative with none matches every release.
    if op.is_empty() && matches!(version, "*" | "x" | "X") {
        return Ok(());
    }
    let (op, negated) = match op {
        "!=" => ("=", true),
        op => (op, false),
    };
    let mut parsed =
        Comparator::parse(&format!("{op}{version}")).map_err(|e| bad(e.to_string()))?;
    if op.is_empty() && parsed.op == Op::Caret {
        // Cargo reads a bare version as `^`; Masterminds and npm read it as `=`.
        parsed.op = Op::Exact;
    }
    if negated {
        alternative.forbidden.push(parsed);
    } else {
        alternative.required.comparators.push(parsed);
    }
    Ok(())
}

/// Length of the comparison operator at the start of `text` (0 when there is none).
fn operator_len(text: &str) -> usize {
    text.bytes().take_while(|b| matches!(b, b'<' | b'>' | b'=' | b'!' | b'^' | b'~')).count()
}

// === impl ProviderVersion ===

impl<'a> ProviderVersion<'a> {
    /// Parses a provider's version text, keeping text that does not parse.
    pub(super) fn parse(text: &'a str) -> Self {
        parse_version(text).map_or(Self::Unparsed(text), Self::Semver)
    }

    /// Ranking order. Build metadata is ignored (semver precedence), so replicas whose versions
    /// differ only in build metadata rank equal and are balanced across.
    pub(super) fn rank(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Self::Semver(a), Self::Semver(b)) => a.cmp_precedence(b),
            (Self::Semver(_), Self::Unparsed(_)) => Ordering::Greater,
            (Self::Unparsed(_), Self::Semver(_)) => Ordering::Less,
            (Self::Unparsed(a), Self::Unparsed(b)) => a.cmp(b),
        }
    }
}

impl fmt::Display for ProviderVersion<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Semver(version) => version.fmt(f),
            Self::Unparsed(text) => write!(f, "{text:?}"),
        }
    }
}

/// Parses a provider's capability version: full semver (`1.4.0`, `1.4.0-beta.1+build`), or a
/// partial `1` / `1.2` padded with zeros, with an optional leading `v`. Empty means `0.0.0`, as
/// the contract says for `Tool.version`.
///
/// ```
/// # use switchboard_registry::resolution::parse_version;
/// assert_eq!(parse_version("v1.2")?, semver::Version::new(1, 2, 0));
/// assert_eq!(parse_version("")?, semver::Version::new(0, 0, 0));
/// assert!(parse_version("latest").is_err());
/// # Ok::<(), String>(())
/// ```
pub fn parse_version(text: &str) -> Result<Version, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Ok(Version::new(0, 0, 0));
    }
    let body = trimmed.strip_prefix(['v', 'V']).unwrap_or(trimmed);
    let (core, suffix) = body.split_at(body.find(['-', '+']).unwrap_or(body.len()));
    let padded = match core.split('.').count() {
        1 => Some(format!("{core}.0.0{suffix}")),
        2 => Some(format!("{core}.0{suffix}")),
        _ => None,
    };
    Version::parse(padded.as_deref().unwrap_or(body))
        .map_err(|e| format!("bad version {}: {e}", shown(text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        parse_version(text).unwrap()
    }

    #[test]
    fn constraints_match_like_masterminds() {
        let table = [
            ("", "0.0.0", true),
            ("", "2.0.0-rc.1", true),
            ("*", "3.1.0", true),
            (">=1.2, <2", "1.2.0", true),
            (">=1.2, <2", "2.0.0", false),
            (">=1.2 <2", "1.9.9", true),
            (">=1.2 <2", "1.1.9", false),
            (">= v1.2 , < 2", "1.5.0", true),
            ("^1.2", "1.9.0", true),
            ("^1.2", "2.0.0", false),
            ("^0.2.3", "0.2.9", true),
            ("^0.2.3", "0.3.0", false),
            ("~1.2", "1.2.9", true),
            ("~1.2", "1.3.0", false),
            ("1.2.3", "1.2.3", true),
            ("1.2.3", "1.2.4", false),
            ("1.2", "1.2.7", true),
            ("1.2", "1.3.0", false),
            ("=1.2.3", "1.2.3", true),
            ("1.x", "1.0.0", true),
            ("1.X", "2.0.0", false),
            ("1.*", "1.99.0", true),
            ("1.2.x", "1.3.0", false),
            ("<1 || ^3", "0.4.0", true),
            ("<1 || ^3", "2.0.0", false),
            ("<1||^3", "3.5.0", true),
            ("!=1.5.0", "1.5.0", false),
            ("!=1.5.0", "1.6.0", true),
            ("^1, !=1.5", "1.5.2", false),
            ("1.2 - 1.4", "1.4.9", true),
            ("1.2 - 1.4", "1.1.0", false),
            ("1.2.0 - 1.4.0", "1.4.1", false),
            ("^1", "1.5.0-beta", false),
            (">=1.5.0-alpha", "1.5.0-beta", true),
        ];
        for (constraint, version, want) in table {
            let parsed = VersionConstraint::parse(constraint).unwrap();
            assert_eq!(parsed.matches(&v(version)), want, "{constraint:?} vs {version}");
        }
    }

    #[test]
    fn bad_constraints_name_the_bad_part() {
        let table = [
            (
                ">=x",
                "bad version constraint \">=x\": unexpected character 'x' while parsing \
                     major version number",
            ),
            (
                "^1, >= x",
                "bad version constraint \">=x\": unexpected character 'x' while \
                          parsing major version number",
            ),
            ("1 ||", "bad version constraint \"1 ||\": empty alternative"),
            ("^1 || || ^2", "bad version constraint \"^1 || || ^2\": empty alternative"),
            ("<", "bad version constraint \"<\": missing version after operator"),
            (">=1 - 2", "bad version constraint \">=1 - 2\": a hyphen range takes bare versions"),
            (
                "latest",
                "bad version constraint \"latest\": unexpected character 'l' while \
                        parsing major version number",
            ),
        ];
        for (text, want) in table {
            assert_eq!(VersionConstraint::parse(text).unwrap_err(), want, "{text:?}");
        }
        assert!(VersionConstraint::parse("1.2.3.4").is_err());
        assert!(VersionConstraint::parse("~>1.2").is_err());
    }

    #[test]
    fn provider_versions_pad_partial_forms() {
        let table = [
            ("", "0.0.0"),
            ("1", "1.0.0"),
            ("v1.2", "1.2.0"),
            (" 1.2.3 ", "1.2.3"),
            ("1.2-beta", "1.2.0-beta"),
            ("2+build.5", "2.0.0+build.5"),
            ("1.4.0-rc.1+b2", "1.4.0-rc.1+b2"),
        ];
        for (text, want) in table {
            assert_eq!(v(text).to_string(), want, "{text:?}");
        }
        for bad in ["latest", "1.2.3.4", "1.", "v", "01.2.3", "1.x"] {
            let error = parse_version(bad).unwrap_err();
            assert!(error.starts_with(&format!("bad version {bad:?}: ")), "{error}");
        }
    }

    #[test]
    fn unparsable_versions_match_only_their_own_text() {
        assert!(VersionConstraint::any().matches_text("latest"));
        let constraint = VersionConstraint::parse("1.x").unwrap();
        assert!(constraint.matches_text("1.x"));
        assert!(constraint.matches_text("1.4"));
        assert!(!constraint.matches_text("2.x"));
    }

    #[test]
    fn semver_outranks_unparsable_and_build_metadata_ties() {
        let rank = |a, b| ProviderVersion::parse(a).rank(&ProviderVersion::parse(b));
        assert_eq!(rank("0.0.1", "latest"), Ordering::Greater);
        assert_eq!(rank("alpha", "beta"), Ordering::Less);
        assert_eq!(rank("1.4.0+b1", "1.4+b2"), Ordering::Equal);
        assert_eq!(rank("1.4.0-rc.1", "1.4.0"), Ordering::Less);
    }

    #[test]
    fn displays_as_written() {
        assert_eq!(VersionConstraint::parse("  >=1.2 <2 ").unwrap().to_string(), ">=1.2 <2");
        assert_eq!(VersionConstraint::parse(" ").unwrap().to_string(), "*");
        assert!(VersionConstraint::parse("").unwrap().is_any());
    }
}
