//! The gateway's OpenMetrics text folded into per-tool and per-endpoint
//! rows. The page computes rates from two readings, so only running totals
//! are sent: calls and errors by tool, latency sum and count by tool, and
//! the breaker state by endpoint.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

const REQUESTS: &str = "switchboard_gateway_requests_total";
const LATENCY_SUM: &str = "switchboard_gateway_request_seconds_sum";
const LATENCY_COUNT: &str = "switchboard_gateway_request_seconds_count";
const BREAKER: &str = "switchboard_gateway_breaker_state";

#[derive(Default)]
struct ToolRow {
    calls: f64,
    errors: f64,
    latency_sum: f64,
    latency_count: f64,
}

/// `{tools: [{tool, calls, errors, latency_sum, latency_count}], breakers: [{endpoint, state}]}`.
pub(crate) fn gateway(text: &str) -> Value {
    let mut tools: BTreeMap<String, ToolRow> = BTreeMap::new();
    let mut breakers = Vec::new();
    for (name, labels, value) in text.lines().filter_map(sample) {
        let tool = labels.get("tool").and_then(Value::as_str).unwrap_or_default().to_owned();
        match name {
            REQUESTS => {
                let row = tools.entry(tool).or_default();
                row.calls += value;
                if labels.get("outcome").and_then(Value::as_str).is_some_and(|o| o != "ok") {
                    row.errors += value;
                }
            }
            LATENCY_SUM => tools.entry(tool).or_default().latency_sum += value,
            LATENCY_COUNT => tools.entry(tool).or_default().latency_count += value,
            BREAKER => breakers.push(json!({ "labels": labels, "state": value })),
            _ => {}
        }
    }
    let tools: Vec<Value> = tools
        .into_iter()
        .map(|(tool, r)| {
            json!({ "tool": tool, "calls": r.calls, "errors": r.errors,
                    "latency_sum": r.latency_sum, "latency_count": r.latency_count })
        })
        .collect();
    json!({ "tools": tools, "breakers": breakers })
}

/// `name{a="x",b="y"} 1.5` → (name, labels, value); comments and junk are `None`.
fn sample(line: &str) -> Option<(&str, Map<String, Value>, f64)> {
    if line.starts_with('#') {
        return None;
    }
    let (series, value) = line.rsplit_once(' ')?;
    let value: f64 = value.parse().ok()?;
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => (name, labels(rest.strip_suffix('}')?)),
        None => (series, Map::new()),
    };
    Some((name, labels, value))
}

/// Label values here are tool names and endpoints: no commas or quotes inside.
fn labels(text: &str) -> Map<String, Value> {
    text.split(',')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), Value::String(v.trim_matches('"').to_owned())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_counters_by_tool() {
        let text = "# TYPE x counter\n\
            switchboard_gateway_requests_total{tool=\"get_date\",outcome=\"ok\"} 3\n\
            switchboard_gateway_requests_total{tool=\"get_date\",outcome=\"timeout\"} 1\n\
            switchboard_gateway_request_seconds_sum{tool=\"get_date\"} 0.5\n\
            switchboard_gateway_request_seconds_count{tool=\"get_date\"} 4\n\
            switchboard_gateway_breaker_state{endpoint=\"http://a\"} 1\n";
        let value = gateway(text);
        assert_eq!(value["tools"][0]["calls"], 4.0);
        assert_eq!(value["tools"][0]["errors"], 1.0);
        assert_eq!(value["tools"][0]["latency_count"], 4.0);
        assert_eq!(value["breakers"][0]["labels"]["endpoint"], "http://a");
    }
}
