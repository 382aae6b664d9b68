//! Reading Prometheus text exposition in assertions.

/// The value of the sample `name` (exact name, no labels) in `text`.
pub fn metric_value(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|line| !line.starts_with('#')).find_map(|line| {
        let (sample, value) = line.rsplit_once(' ')?;
        (sample == name).then(|| value.parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_exact_sample_names_only() {
        let text = "# HELP x_total help\nx_total 3\nx_total_more 4\ny{a=\"b\"} 5\n";
        assert_eq!(metric_value(text, "x_total"), Some(3.0));
        assert_eq!(metric_value(text, "x"), None);
        assert_eq!(metric_value(text, "y"), None);
    }
}
