//! Table tests of [`resolve`]: one case per rule of the module docs.

use switchboard_proto::v1::{
    Agent, AgentStatus, DependencyResolution, DependencySpec, StatusReason, Tool,
};

use super::resolve;

const CAP: &str = "date_service";

fn agent(id: &str, status: AgentStatus, tools: Vec<Tool>) -> Agent {
    Agent {
        id: id.to_owned(),
        name: id.split('-').next().unwrap_or(id).to_owned(),
        endpoint: format!("http://{id}:9000/mcp"),
        status: status as i32,
        tools,
        ..Agent::default()
    }
}

fn tool(name: &str, capability: &str, version: &str, tags: &[&str]) -> Tool {
    Tool {
        name: name.to_owned(),
        capability: capability.to_owned(),
        version: version.to_owned(),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        ..Tool::default()
    }
}

/// Agents written as a table row, each with one `today` tool of capability [`CAP`]:
/// `"a 1.4.0, b 2.0.0 degraded #eu #fast, c _ expired"` is agent `a` (healthy, version 1.4.0, no
/// tags), agent `b` (degraded, tagged `eu` and `fast`) and agent `c` (expired, empty version).
/// Statuses: `healthy` (default), `degraded`, `expired`, `unknown` (UNSPECIFIED).
fn agents(table: &str) -> Vec<Agent> {
    let row = |row: &str| {
        let mut words = row.split_whitespace();
        let id = words.next().unwrap_or_default();
        let version = words.next().filter(|v| *v != "_").unwrap_or_default();
        let (mut status, mut tags) = (AgentStatus::Healthy, Vec::new());
        for word in words {
            match word {
                "degraded" => status = AgentStatus::Degraded,
                "expired" => status = AgentStatus::Expired,
                "unknown" => status = AgentStatus::Unspecified,
                tag => tags.push(tag.strip_prefix('#').unwrap_or_else(|| panic!("bad word {tag}"))),
            }
        }
        agent(id, status, vec![tool("today", CAP, version, &tags)])
    };
    table.split(',').filter(|r| !r.trim().is_empty()).map(row).collect()
}

fn spec(version: &str, tags: &[&str]) -> DependencySpec {
    DependencySpec {
        capability: CAP.to_owned(),
        version: version.to_owned(),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
    }
}

fn run(spec: &DependencySpec, agents: &[Agent], requester: Option<&str>) -> DependencyResolution {
    let pairs = agents.iter().flat_map(|a| a.tools.iter().map(move |t| (a, t)));
    resolve(spec, pairs, requester, true)
}

fn chosen_ids(resolution: &DependencyResolution) -> Vec<&str> {
    resolution.providers.iter().map(|p| p.agent_id.as_str()).collect()
}

/// One row of the table: a spec, the agents around, and the expected outcome.
struct Case {
    name: &'static str,
    version: &'static str,
    tags: &'static [&'static str],
    agents: &'static str,
    requester: Option<&'static str>,
    want: &'static [&'static str],
    reason: &'static str,
}

fn case(name: &'static str, version: &'static str, tags: &'static [&'static str]) -> Case {
    Case { name, version, tags, agents: "", requester: None, want: &[], reason: "" }
}

impl Case {
    fn agents(self, agents: &'static str) -> Self {
        Self { agents, ..self }
    }
    fn from(self, requester: &'static str) -> Self {
        Self { requester: Some(requester), ..self }
    }
    fn want(self, want: &'static [&'static str], reason: &'static str) -> Self {
        Self { want, reason, ..self }
    }
}

#[test]
fn resolves_every_rule() {
    let cases = [
        // Version constraint forms.
        case("comma range", ">=1.2, <2", &[])
            .agents("a 1.1.0, b 1.5.0, c 2.0.0")
            .want(&["b"], "1 provider at score 0, version 1.5.0"),
        case("space range", ">=1.2 <2", &[])
            .agents("a 1.1.0, b 1.5.0, c 2.0.0")
            .want(&["b"], "1 provider at score 0, version 1.5.0"),
        case("operator apart", ">= 1.2, < 2", &[])
            .agents("a 1.1.0, b 1.5.0")
            .want(&["b"], "1 provider at score 0, version 1.5.0"),
        case("caret", "^1.2", &[])
            .agents("a 1.1.9, b 1.9.0, c 2.0.0")
            .want(&["b"], "1 provider at score 0, version 1.9.0"),
        case("tilde", "~1.2", &[])
            .agents("a 1.2.7, b 1.3.0")
            .want(&["a"], "1 provider at score 0, version 1.2.7"),
        case("bare version is exact", "1.2.3", &[])
            .agents("a 1.2.3, b 1.2.4")
            .want(&["a"], "1 provider at score 0, version 1.2.3"),
        case("equals", "=1.2.3", &[])
            .agents("a 1.2.3, b 1.3.0")
            .want(&["a"], "1 provider at score 0, version 1.2.3"),
        case("x wildcard", "1.x", &[])
            .agents("a 1.9.0, b 2.0.0")
            .want(&["a"], "1 provider at score 0, version 1.9.0"),
        case("star wildcard", "1.*", &[])
            .agents("a 1.9.0, b 2.0.0")
            .want(&["a"], "1 provider at score 0, version 1.9.0"),
        case("alternatives", "<1 || ^3", &[])
            .agents("a 0.5.0, b 2.5.0, c 3.1.0")
            .want(&["c"], "1 provider at score 0, version 3.1.0"),
        case("not equal", "^1, !=1.5.0", &[])
            .agents("a 1.5.0, b 1.4.0")
            .want(&["b"], "1 provider at score 0, version 1.4.0"),
        case("hyphen range", "1.2 - 1.4", &[])
            .agents("a 1.4.9, b 1.5.0")
            .want(&["a"], "1 provider at score 0, version 1.4.9"),
        case("partial provider versions", ">=1.4", &[])
            .agents("a 1.4, b v1.4.0")
            .want(&["a", "b"], "2 providers at score 0, version 1.4.0"),
        case("empty provider version is 0.0.0", "<1", &[])
            .agents("a _")
            .want(&["a"], "1 provider at score 0, version 0.0.0"),
        case("pre-release needs a pre-release constraint", "^1", &[])
            .agents("a 1.5.0-beta")
            .want(&[], "no healthy or degraded provider satisfies version ^1 (1 considered)"),
        case("empty constraint takes pre-releases", "", &[])
            .agents("a 1.5.0-beta")
            .want(&["a"], "1 provider at score 0, version 1.5.0-beta"),
        case("build metadata ties", "", &[])
            .agents("b 1.4.0+b2, a 1.4.0+b1")
            .want(&["a", "b"], "2 providers at score 0, version 1.4.0+b1"),
        case("unparsable version matched exactly", "1.x", &[])
            .agents("a 1.x, b 2.x")
            .want(&["a"], "1 provider at score 0, version \"1.x\""),
        case("unparsable version ranks below semver", "", &[])
            .agents("a latest, b 0.1.0")
            .want(&["b"], "1 provider at score 0, version 0.1.0"),
        // Tags.
        case("required tag", "", &["eu"])
            .agents("a 2.0.0 #us, b 1.0.0 #eu #us")
            .want(&["b"], "1 provider at score 5, version 1.0.0"),
        case("preferred tag: score beats version", "", &["+fast"])
            .agents("a 2.0.0, b 1.0.0 #fast")
            .want(&["b"], "1 provider at score 10, version 1.0.0"),
        case("excluded tag", "", &["-beta"])
            .agents("a 2.0.0 #beta, b 1.0.0")
            .want(&["b"], "1 provider at score 0, version 1.0.0"),
        case("every tag operator", "", &["eu", "+fast", "-beta"])
            .agents("a 1.0.0 #eu #fast #beta, b 1.0.0 #eu, c 1.0.0 #eu #fast")
            .want(&["c"], "1 provider at score 15, version 1.0.0"),
        // Ranking.
        case("replicas all returned, by agent id", "", &[])
            .agents("c 1.4.0, a 1.4.0, b 1.4.0")
            .want(&["a", "b", "c"], "3 providers at score 0, version 1.4.0"),
        case("version breaks score ties", "", &["+eu"])
            .agents("a 1.2.0 #eu, b 1.4.0 #eu, c 9.0.0")
            .want(&["b"], "1 provider at score 10, version 1.4.0"),
        // Status.
        case("only degraded", "", &[]).agents("a 1.0.0 degraded, b 2.0.0 expired").want(
            &["a"],
            "1 provider at score 0, version 1.0.0 (degraded: no healthy provider qualifies)",
        ),
        case("healthy beats degraded", "", &["+eu"])
            .agents("a 9.0.0 degraded #eu, b 1.0.0")
            .want(&["b"], "1 provider at score 0, version 1.0.0"),
        case("degraded replica left out", "", &[])
            .agents("a 1.0.0 degraded, b 1.0.0")
            .want(&["b"], "1 provider at score 0, version 1.0.0"),
        case("healthy of wrong version does not block degraded", "^2", &[])
            .agents("a 2.1.0 degraded, b 1.0.0")
            .want(
                &["a"],
                "1 provider at score 0, version 2.1.0 (degraded: no healthy provider qualifies)",
            ),
        case("expired never", "", &[]).agents("a 1.0.0 expired").want(
            &[],
            "no healthy or degraded provider of capability \"date_service\" (1 considered)",
        ),
        case("unspecified status is unknown", "", &[])
            .agents("a 1.0.0 unknown, b 1.0.0 expired")
            .want(
                &[],
                "no healthy or degraded provider of capability \"date_service\" \
                 (2 considered: 1 expired, 1 unknown status)",
            ),
        // Unresolved.
        case("no provider", "", &[]).want(&[], "no provider of capability \"date_service\""),
        case("version and tags", "^2", &["eu"])
            .agents("a 1.0.0 #eu, b 2.0.0, c 2.0.0 expired #eu")
            .want(
                &[],
                "no healthy or degraded provider satisfies version ^2 and tags eu \
                 (3 considered: 1 expired, 1 version mismatch, 1 tag mismatch)",
            ),
        case("preferred tags never exclude", "", &["eu", "+fast", "-beta"])
            .agents("a 1.0.0 #beta")
            .want(&[], "no healthy or degraded provider satisfies tags eu, -beta (1 considered)"),
        // Self-dependency.
        case("own tool excluded", "", &[])
            .agents("a 9.0.0, b 1.0.0")
            .from("a")
            .want(&["b"], "1 provider at score 0, version 1.0.0"),
        case("only own tool", "", &[])
            .agents("a 1.0.0")
            .from("a")
            .want(&[], "no provider of capability \"date_service\" besides the requesting agent"),
        // Invalid specs.
        case("bad constraint", ">=1, >=x", &[]).agents("a 1.0.0").want(
            &[],
            "bad version constraint \">=x\": \
             unexpected character 'x' while parsing major version number",
        ),
        case("bad tag", "", &["+EU"]).agents("a 1.0.0").want(
            &[],
            "bad tag constraint \"+EU\": a tag is `[a-z0-9][a-z0-9_.-]{0,63}`, \
             optionally after `+` (preferred) or `-` (excluded)",
        ),
    ];
    for case in cases {
        let agents = agents(case.agents);
        let spec = spec(case.version, case.tags);
        let resolution = run(&spec, &agents, case.requester);
        assert_eq!(chosen_ids(&resolution), case.want, "{}: providers", case.name);
        assert_eq!(resolution.reason, case.reason, "{}: reason", case.name);
        assert_eq!(resolution.spec.as_ref(), Some(&spec), "{}: spec echoed", case.name);
        let chosen = resolution.candidates.iter().filter(|c| c.chosen).count();
        assert_eq!(chosen, case.want.len(), "{}: chosen candidates", case.name);
    }
}

#[test]
fn explains_every_verdict() {
    let agents = agents(
        "j-unknown 1.4.0 unknown #eu, i-self 9.0.0 #eu #fast, h-beta 1.4.0 #eu #beta, \
         g-no-eu 1.4.0 #fast, f-expired 1.4.0 expired #eu #fast, e-old 0.9.0 #eu #fast, \
         d-degraded 3.0.0 degraded #eu #fast, c-lower-version 1.2.0 #eu #fast, \
         b-lower-score 2.0.0 #eu, a-chosen 1.4.0 #eu #fast",
    );
    let spec = spec(">=1.0", &["eu", "+fast", "-beta"]);
    let resolution = run(&spec, &agents, Some("i-self"));

    let explained: Vec<(&str, bool, &str)> = resolution
        .candidates
        .iter()
        .map(|c| {
            let id = c.provider.as_ref().map_or("", |p| p.agent_id.as_str());
            (id, c.chosen, c.reason.as_str())
        })
        .collect();
    assert_eq!(
        explained,
        [
            ("a-chosen", true, "chosen: score 15, version 1.4.0, healthy"),
            ("b-lower-score", false, "not chosen: lower score 5 < 15"),
            ("c-lower-version", false, "not chosen: version 1.2.0 below 1.4.0"),
            ("d-degraded", false, "not chosen: degraded while healthy providers exist"),
            ("e-old", false, "excluded: version 0.9.0 does not satisfy >=1.0"),
            ("f-expired", false, "excluded: status expired"),
            ("g-no-eu", false, "excluded: missing required tag eu"),
            ("h-beta", false, "excluded: carries excluded tag beta"),
            (
                "i-self",
                false,
                "excluded: own tool (an agent does not satisfy its own dependencies)"
            ),
            ("j-unknown", false, "excluded: status unknown"),
        ]
    );
    let chosen = &resolution.providers;
    assert_eq!(chosen_ids(&resolution), ["a-chosen"]);
    assert_eq!((chosen[0].score, chosen[0].status), (15, AgentStatus::Healthy as i32));
    assert_eq!(chosen[0].endpoint, "http://a-chosen:9000/mcp");

    let pairs = agents.iter().flat_map(|a| a.tools.iter().map(move |t| (a, t)));
    let quiet = resolve(&spec, pairs, Some("i-self"), false);
    assert!(quiet.candidates.is_empty(), "candidates are filled only when explaining");
    assert_eq!((quiet.providers, quiet.reason), (resolution.providers, resolution.reason));
}

#[test]
fn several_tools_of_one_agent_are_ordered_by_tool_name() {
    let healthy = AgentStatus::Healthy;
    let agents = [
        agent("b", healthy, vec![tool("today", CAP, "1.0.0", &[])]),
        agent(
            "a",
            healthy,
            vec![tool("zulu", CAP, "1.0.0", &[]), tool("alpha", CAP, "1.0.0", &[])],
        ),
    ];
    let resolution = run(&spec("", &[]), &agents, None);
    let chosen: Vec<(&str, &str)> =
        resolution.providers.iter().map(|p| (p.agent_id.as_str(), p.tool_name.as_str())).collect();
    assert_eq!(chosen, [("a", "alpha"), ("a", "zulu"), ("b", "today")]);
}

#[test]
fn tools_of_another_capability_are_ignored() {
    // The caller's index should never hand these over; if it does, they do not count.
    let agents =
        [agent("a", AgentStatus::Healthy, vec![tool("weather", "forecast", "1.0.0", &[])])];
    let resolution = run(&spec("", &[]), &agents, None);
    assert!(resolution.providers.is_empty());
    assert!(resolution.candidates.is_empty());
    assert_eq!(resolution.reason, "no provider of capability \"date_service\"");
}

#[test]
fn spec_without_capability_is_rejected() {
    let agents = [agent("a", AgentStatus::Healthy, vec![tool("plain", "", "1.0.0", &[])])];
    let resolution = run(&DependencySpec::default(), &agents, None);
    assert!(resolution.providers.is_empty());
    assert_eq!(resolution.reason, "bad dependency spec: no capability");
}

#[test]
fn a_provider_whose_connection_broke_is_never_wired_even_as_a_last_resort() {
    let mut crashed =
        agent("gone-1", AgentStatus::Degraded, vec![tool("today", CAP, "1.0.0", &[])]);
    crashed.set_condition(AgentStatus::Degraded, StatusReason::StreamBroke);
    let mut late = agent("late-1", AgentStatus::Degraded, vec![tool("today", CAP, "1.0.0", &[])]);
    late.set_condition(AgentStatus::Degraded, StatusReason::HeartbeatLate);

    let only_crashed = run(&spec("", &[]), std::slice::from_ref(&crashed), None);
    assert!(only_crashed.providers.is_empty(), "a crashed provider is not a last resort");
    assert!(only_crashed.candidates[0].reason.contains("connection lost"));

    let both = run(&spec("", &[]), &[crashed.clone(), late], None);
    assert_eq!(chosen_ids(&both), ["late-1"], "a merely late provider still is");

    // A record from a registry without the typed cause is read by its text.
    crashed.status_cause = 0;
    assert_eq!(crashed.status_reason, "connection lost");
    let old = run(&spec("", &[]), std::slice::from_ref(&crashed), None);
    assert!(old.providers.is_empty(), "the text alone still excludes it");
}
