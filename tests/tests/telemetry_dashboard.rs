//! The Grafana dashboard (`deploy/grafana/switchboard.json`) charts only
//! metrics that exist: every `switchboard_*` name in its PromQL is exposed
//! by a running mesh (registry admin port, gateway port, both agents' ports),
//! with the type its suffix implies (`_bucket`/`_sum`/`_count` of a
//! histogram, `_total` of a counter).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use switchboard_tests::TracedMesh;

const DASHBOARD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/grafana/switchboard.json");

/// Every `switchboard_*` metric name in the dashboard's `expr` fields.
fn dashboard_metric_names() -> BTreeSet<String> {
    let text = std::fs::read_to_string(DASHBOARD).expect("read the dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    collect_exprs(&dashboard, &mut exprs);
    assert!(!exprs.is_empty(), "no PromQL found in {DASHBOARD}");
    exprs.iter().flat_map(|expr| metric_names(expr)).collect()
}

fn collect_exprs(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr", serde_json::Value::String(expr)) => out.push(expr.clone()),
                    _ => collect_exprs(value, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

/// Identifiers starting with `switchboard_` in one PromQL expression
/// (label names inside `{}` and `by ()` never start with it).
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(start) = rest.find("switchboard_") {
        let preceded = rest[..start].chars().next_back();
        let tail = &rest[start..];
        let end =
            tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        if !preceded.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            names.push(tail[..end].to_owned());
        }
        rest = &tail[end..];
    }
    names
}

/// What the components expose: sample names and declared family types.
#[derive(Default)]
struct Exposition {
    samples: BTreeSet<String>,
    types: BTreeMap<String, String>,
}

impl Exposition {
    fn add(&mut self, text: &str) {
        for line in text.lines() {
            if let Some(declared) = line.strip_prefix("# TYPE ") {
                let mut words = declared.split_whitespace();
                if let (Some(name), Some(kind)) = (words.next(), words.next()) {
                    self.types.insert(name.to_owned(), kind.to_owned());
                }
            } else if !line.starts_with('#') && !line.is_empty() {
                let name = line.split(['{', ' ']).next().unwrap_or_default();
                self.samples.insert(name.to_owned());
            }
        }
    }

    /// The family a sample name belongs to, and the type its suffix needs.
    fn family(name: &str) -> Vec<(&str, &'static str)> {
        let mut candidates = Vec::new();
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(base) = name.strip_suffix(suffix) {
                candidates.push((base, "histogram"));
            }
        }
        if let Some(base) = name.strip_suffix("_total") {
            candidates.push((base, "counter"));
        }
        candidates
    }

    /// Exposed as a sample, by a family of the right type.
    fn check(&self, name: &str) -> Result<(), String> {
        if !self.samples.contains(name) {
            return Err(format!("{name}: no such sample"));
        }
        let typed = Self::family(name)
            .into_iter()
            .any(|(base, kind)| self.types.get(base).is_some_and(|t| t == kind));
        let plain = matches!(self.types.get(name).map(String::as_str), Some("gauge" | "unknown"));
        if typed || plain {
            Ok(())
        } else {
            Err(format!("{name}: exposed, but not by a family of the type its name implies"))
        }
    }
}

#[test]
fn names_are_read_from_promql() {
    let expr = r#"histogram_quantile(0.99, sum by (tool, le) (rate(switchboard_gateway_upstream_duration_seconds_bucket{tool!="x"}[$__rate_interval]))) / switchboard_gateway_tools"#;
    assert_eq!(
        metric_names(expr),
        ["switchboard_gateway_upstream_duration_seconds_bucket", "switchboard_gateway_tools"]
    );
    let mut exposed = Exposition::default();
    exposed.add("# TYPE a histogram\na_bucket{le=\"1\"} 1\na_count 1\n# TYPE b counter\nb_total 2\n# TYPE c gauge\nc 3\nd_bucket 1\n");
    assert!(exposed.check("a_bucket").is_ok());
    assert!(exposed.check("b_total").is_ok());
    assert!(exposed.check("c").is_ok());
    assert!(exposed.check("a_sum").is_err(), "no such sample");
    assert!(exposed.check("d_bucket").is_err(), "not a histogram");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_on_the_dashboard_is_exposed_by_a_running_mesh() {
    let names = dashboard_metric_names();
    for component in ["switchboard_registry_", "switchboard_gateway_", "switchboard_agent_"] {
        assert!(names.iter().any(|n| n.starts_with(component)), "no {component}* panel");
    }
    let mesh = TracedMesh::start(&[("SWITCHBOARD_LOG", "warn")]).await;
    // Calls through the gateway make the labelled series exist.
    mesh.wait_until_wired().await;
    let mut exposed = Exposition::default();
    for url in mesh.metrics_urls() {
        let text = reqwest::get(&url).await.expect("GET /metrics").text().await.expect("body");
        exposed.add(&text);
    }
    assert!(exposed.samples.len() > names.len(), "the components expose their metrics");
    let missing: Vec<String> = names.iter().filter_map(|n| exposed.check(n).err()).collect();
    assert!(missing.is_empty(), "charted but not exposed:\n{}", missing.join("\n"));
}
