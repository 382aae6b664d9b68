//! Property test of [`resolve`] against a straightforward model of the resolution rules: for any set of
//! candidates, what is returned qualifies, shares the best rank, and is every candidate that does.

use std::cmp::Ordering;

use proptest::prelude::*;
use switchboard_proto::v1::{Agent, AgentStatus, DependencyResolution, DependencySpec, Tool};

use super::{TagConstraints, TagVerdict, VersionConstraint, parse_version, resolve};

const VERSIONS: &[&str] = &[
    "",
    "0.9.0",
    "1",
    "1.2",
    "1.2.3",
    "1.4.0",
    "1.4.0+b1",
    "v1.4.0",
    "2.0.0-beta",
    "2.0.0",
    "1.x",
];
const CONSTRAINTS: &[&str] =
    &["", ">=1.2, <2", ">=1.2 <2", "^1.2", "~1.2", "1.2.3", "1.x", "<1 || >=2.0.0-beta", "!=1.4.0"];
const TAGS: &[&str] = &["eu", "us", "fast", "beta"];

fn tool_strategy() -> impl Strategy<Value = Tool> {
    let capability = prop::sample::select(&["cap", "cap", "other"][..]);
    let version = prop::sample::select(VERSIONS);
    let tags = prop::sample::subsequence(TAGS, 0..=TAGS.len());
    (capability, version, tags).prop_map(|(capability, version, tags)| Tool {
        capability: capability.to_owned(),
        version: version.to_owned(),
        tags: tags.into_iter().map(str::to_owned).collect(),
        ..Tool::default()
    })
}

fn agent_strategy(index: usize) -> impl Strategy<Value = Agent> {
    // Status 4 is a value this build does not know: it must be treated like UNSPECIFIED.
    let tools = prop::collection::vec(tool_strategy(), 1..=2);
    (prop::sample::select(&["a", "b", "c"][..]), 0..=4_i32, tools).prop_map(
        move |(prefix, status, mut tools)| {
            for (i, tool) in tools.iter_mut().enumerate() {
                tool.name = format!("tool-{i}");
            }
            Agent { id: format!("{prefix}-{index}"), status, tools, ..Agent::default() }
        },
    )
}

fn spec_strategy() -> impl Strategy<Value = DependencySpec> {
    // Each tag gets at most one operator, so the spec is always valid.
    let ops = prop::collection::vec(prop::sample::select(&["", "+", "-", "skip"][..]), TAGS.len());
    (prop::sample::select(CONSTRAINTS), ops).prop_map(|(version, ops)| DependencySpec {
        capability: "cap".to_owned(),
        version: version.to_owned(),
        tags: ops
            .iter()
            .zip(TAGS)
            .filter(|(op, _)| **op != "skip")
            .map(|(op, tag)| format!("{op}{tag}"))
            .collect(),
    })
}

fn world() -> impl Strategy<Value = (Vec<Agent>, DependencySpec, Option<usize>)> {
    let agents = (0..7_usize).prop_flat_map(|n| (0..n).map(agent_strategy).collect::<Vec<_>>());
    (agents, spec_strategy(), prop::option::of(0..7_usize))
}

/// The model's ranking: tag score, then version; semver above unparsable text.
fn rank(a: (i32, &str), b: (i32, &str)) -> Ordering {
    let version = match (parse_version(a.1), parse_version(b.1)) {
        (Ok(x), Ok(y)) => x.cmp_precedence(&y),
        (Ok(_), Err(_)) => Ordering::Greater,
        (Err(_), Ok(_)) => Ordering::Less,
        (Err(_), Err(_)) => a.1.cmp(b.1),
    };
    a.0.cmp(&b.0).then(version)
}

/// Every candidate passing rules 1–5 with its score, per the model.
fn eligible<'a>(
    agents: &'a [Agent],
    spec: &DependencySpec,
    requester: Option<&str>,
) -> Vec<(&'a Agent, &'a Tool, i32)> {
    let version = VersionConstraint::parse(&spec.version).unwrap();
    let tags = TagConstraints::parse(&spec.tags).unwrap();
    let live = |a: &Agent| matches!(a.status(), AgentStatus::Healthy | AgentStatus::Degraded);
    let mut out = Vec::new();
    for agent in agents.iter().filter(|a| live(a) && Some(a.id.as_str()) != requester) {
        for tool in agent.tools.iter().filter(|t| t.capability == spec.capability) {
            if let (true, TagVerdict::Match { score }) =
                (version.matches_text(&tool.version), tags.evaluate(&tool.tags))
            {
                out.push((agent, tool, score));
            }
        }
    }
    out
}

/// The ranking key of a model candidate.
fn key<'a>((_, tool, score): &(&Agent, &'a Tool, i32)) -> (i32, &'a str) {
    (*score, tool.version.as_str())
}

fn check(agents: &[Agent], spec: &DependencySpec, requester: Option<&str>) {
    let pairs = || agents.iter().flat_map(|a| a.tools.iter().map(move |t| (a, t)));
    let resolution: DependencyResolution = resolve(spec, pairs(), requester, false);
    let eligible = eligible(agents, spec, requester);
    let any_healthy = eligible.iter().any(|(a, _, _)| a.status() == AgentStatus::Healthy);
    let pool: Vec<_> = eligible
        .iter()
        .filter(|(a, _, _)| (a.status() == AgentStatus::Healthy) == any_healthy)
        .collect();

    let returned: Vec<(&str, &str)> =
        resolution.providers.iter().map(|p| (p.agent_id.as_str(), p.tool_name.as_str())).collect();
    for provider in &resolution.providers {
        let qualifies = pool.iter().any(|(a, t, score)| {
            a.id == provider.agent_id && t.name == provider.tool_name && *score == provider.score
        });
        assert!(qualifies, "returned {provider:?} does not qualify");
    }
    if let Some(first) = resolution.providers.first() {
        let top = (first.score, first.version.as_str());
        for p in &resolution.providers {
            assert_eq!(rank((p.score, &p.version), top), Ordering::Equal, "ranks differ");
        }
        for (agent, tool, score) in &pool {
            let outranks = rank((*score, &tool.version), top) == Ordering::Greater;
            assert!(!outranks, "{} {} outranks the returned providers", agent.id, tool.name);
        }
    }

    let mut want: Vec<(&str, &str)> = match pool.iter().max_by(|a, b| rank(key(a), key(b))) {
        Some(best) => pool
            .iter()
            .filter(|e| rank(key(e), key(best)) == Ordering::Equal)
            .map(|(a, t, _)| (a.id.as_str(), t.name.as_str()))
            .collect(),
        None => Vec::new(),
    };
    want.sort_unstable();
    assert_eq!(returned, want, "every top-ranked provider, by agent id then tool name");

    let explained = resolve(spec, pairs(), requester, true);
    assert_eq!(explained.providers, resolution.providers);
    let considered = pairs().filter(|(_, t)| t.capability == spec.capability).count();
    assert_eq!(explained.candidates.len(), considered);
    assert_eq!(explained.candidates.iter().filter(|c| c.chosen).count(), returned.len());
}

proptest! {
    #[test]
    fn returns_exactly_the_top_ranked_qualifying_providers((agents, spec, requester) in world()) {
        let requester = requester.and_then(|i| agents.get(i)).map(|a| a.id.clone());
        check(&agents, &spec, requester.as_deref());
    }
}
