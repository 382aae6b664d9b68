//! Scope patterns: names with `*` standing for any run of characters
//! (`weather_*`, `*`), the way Consul's prefix rules and etcd's key ranges
//! let one grant cover a family of names.

/// True when `text` matches `pattern`, where `*` matches any run of
/// characters (also none) and every other character matches itself.
pub fn matches(pattern: &str, text: &str) -> bool {
    let (pattern, text) = (pattern.as_bytes(), text.as_bytes());
    // Iterative wildcard match with one backtrack point: linear in
    // practice, and never recursive on hostile input.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// True when any of `patterns` matches `text`.
pub fn any_matches(patterns: &[String], text: &str) -> bool {
    patterns.iter().any(|pattern| matches(pattern, text))
}

/// True for a well-formed pattern: 1 to 64 characters of `[a-z0-9_.-*]`.
pub fn is_valid_pattern(pattern: &str) -> bool {
    (1..=64).contains(&pattern.len())
        && pattern.bytes().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'.' | b'-' | b'*')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_matches_any_run() {
        assert!(matches("weather_*", "weather_forecast"));
        assert!(matches("weather_*", "weather_"));
        assert!(!matches("weather_*", "weather"));
        assert!(!matches("weather_*", "payments"));
        assert!(matches("*", "anything"));
        assert!(matches("a*b*c", "axxbyyc"));
        assert!(!matches("a*b*c", "axxbyy"));
        assert!(matches("weather", "weather"));
        assert!(!matches("weather", "weather2"));
    }

    #[test]
    fn patterns_are_names_with_stars() {
        assert!(is_valid_pattern("weather_*"));
        assert!(!is_valid_pattern(""));
        assert!(!is_valid_pattern("Weather"));
        assert!(!is_valid_pattern("a b"));
    }
}
