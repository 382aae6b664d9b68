//! Name patterns of access rules: `*` matches any run of characters
//! (`get_*`, `*@example.com`, `key:ci-*`); everything else is literal.
//! Compiled once when the rules load, matched without allocating.

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Glob {
    /// The literal pieces between stars.
    pieces: Vec<String>,
    /// Whether the pattern starts / ends with a star.
    open_start: bool,
    open_end: bool,
}

// === impl Glob ===

impl Glob {
    pub(crate) fn new(pattern: &str) -> Self {
        Self {
            pieces: pattern.split('*').filter(|p| !p.is_empty()).map(str::to_owned).collect(),
            open_start: pattern.starts_with('*'),
            open_end: pattern.ends_with('*'),
        }
    }

    pub(crate) fn matches(&self, text: &str) -> bool {
        let mut rest = text;
        let last = self.pieces.len().saturating_sub(1);
        for (i, piece) in self.pieces.iter().enumerate() {
            if i == 0 && !self.open_start {
                let Some(after) = rest.strip_prefix(piece.as_str()) else { return false };
                rest = after;
                if i == last && !self.open_end {
                    return rest.is_empty();
                }
                continue;
            }
            if i == last && !self.open_end {
                return rest.len() >= piece.len() && rest.ends_with(piece.as_str());
            }
            match rest.find(piece.as_str()) {
                Some(at) => rest = &rest[at + piece.len()..],
                None => return false,
            }
        }
        // No pieces: `*` matches anything, `` only the empty name.
        !self.pieces.is_empty() || self.open_start || rest.is_empty()
    }
}

/// Whether any of `globs` matches `text`.
pub(crate) fn any(globs: &[Glob], text: &str) -> bool {
    globs.iter().any(|g| g.matches(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_match_runs_and_the_rest_is_literal() {
        let cases = [
            ("get_*", "get_date", true),
            ("get_*", "set_date", false),
            ("*", "", true),
            ("*", "anything", true),
            ("", "", true),
            ("", "x", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
            ("*@example.com", "alice@example.com", true),
            ("*@example.com", "alice@example.org", false),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "acb", false),
            ("ab*ba", "aba", false),
            ("key:ci-*", "key:ci-nightly", true),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(Glob::new(pattern).matches(text), expected, "{pattern:?} on {text:?}");
        }
    }
}
