//! Dependency resolution: which tools serve a dependency spec right now, and why.
//!
//! Pure logic over snapshots the caller hands in: the registry finds candidates through its
//! capability index and calls [`resolve`] again for every dependent a change touches, never for the
//! whole fleet. Because that happens on every provider change, a call parses the spec once and copies a
//! candidate's data only to return it or, when asked, to explain a verdict.
//!
//! A candidate meets the rules in this order, and the first one it fails is its reason:
//! 1. **Capability**: exactly the spec's. The caller already filters by capability; other tools
//!    are skipped silently rather than trusted.
//! 2. **Not its own tool**: an agent does not satisfy its own dependencies. A tool calling itself
//!    through the mesh is almost always a mistake, and counting the agent would mask a missing
//!    provider: the dependency would look resolved while no other agent can serve it.
//! 3. **Routability** ([`switchboard_proto::Routability`], the one rule the gateway and the SDK
//!    apply too): HEALTHY; DEGRADED (late, or never heartbeated) only when no HEALTHY candidate
//!    passes every other rule, so a healthy provider of the wrong version does not block a
//!    degraded one that fits; EXPIRED never. A provider DEGRADED because its heartbeat stream
//!    broke is treated as gone: a crashed process must not stay wired as a "last resort" — its
//!    dependents are rewired elsewhere or told the dependency is unresolved. UNSPECIFIED (or a
//!    status value this build does not know) is excluded: traffic should only go where the
//!    registry can vouch for liveness.
//! 4. **Version**: see [`VersionConstraint`]. A provider version that is not semver matches only a
//!    constraint written exactly like it, as in MCP Mesh.
//! 5. **Tags**: see [`TagConstraints`]; their score ranks the survivors.
//!
//! Survivors rank by tag score, then by highest version (semver precedence, so build metadata
//! is ignored; every semver version outranks an unparsable one). **All** top-ranked providers are
//! returned, ordered by agent id then tool name, so callers can balance across replicas; MCP Mesh
//! picks a single winner by agent id instead.
//!
//! An invalid spec (bad constraint or tag) resolves to no provider with the parse error as the
//! reason. Registration rejects such specs first; this is defence in depth, never a panic.

mod tags;
mod version;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use tags::{PREFERRED_TAG_SCORE, REQUIRED_TAG_SCORE, TagConstraints, TagVerdict};
pub use version::{VersionConstraint, parse_version};

use std::cmp::Ordering;
use std::fmt;

use switchboard_proto::Routability;
use switchboard_proto::v1::{
    Agent, AgentStatus, Candidate, DependencyResolution, DependencySpec, Provider, Tool,
};

use tags::Verdict;
use version::ProviderVersion;

/// The parsed rules of one spec, built once per [`resolve`] call.
struct Filters {
    version: VersionConstraint,
    tags: TagConstraints,
}

/// A candidate that passed every rule, ranked but not yet compared with the others.
struct Eligible<'a> {
    agent: &'a Agent,
    tool: &'a Tool,
    status: AgentStatus,
    version: ProviderVersion<'a>,
    score: i32,
}

/// The first rule a candidate failed. Borrows instead of formatting, so a resolution that is not
/// explained pays nothing for it.
enum Exclusion<'a, 'f> {
    OwnTool,
    ConnectionLost,
    Status(AgentStatus),
    Version(ProviderVersion<'a>, &'f VersionConstraint),
    MissingTag(&'f str),
    ExcludedTag(&'f str),
}

/// How many candidates each rule excluded, to word an unresolved reason.
#[derive(Debug, Default)]
struct Tally {
    considered: usize,
    own: usize,
    expired: usize,
    unknown: usize,
    version: usize,
    tags: usize,
}

/// The outcome among eligible candidates: which status pool is served and who tops it.
struct Ranking<'e, 'a> {
    /// HEALTHY, or DEGRADED when no healthy candidate is eligible.
    pool: AgentStatus,
    /// Every top-ranked candidate of the pool, by agent id then tool name.
    winners: Vec<&'e Eligible<'a>>,
    /// The first winner: the rank the others are compared with.
    top: &'e Eligible<'a>,
}

/// Verdict classes of explained candidates, in the order they are listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    Chosen,
    NotChosen,
    Excluded,
}

/// Resolves one dependency spec among candidate tools.
///
/// `candidates` are the `(agent, tool)` pairs whose capability equals `spec.capability`, usually
/// from the caller's capability index. `requester_agent_id` is the agent whose tool declared the
/// dependency: its own tools never count (see the module docs). With `explain`, the result also
/// lists every considered candidate with the reason it was chosen or not.
///
/// ```
/// # use switchboard_proto::v1::{Agent, AgentStatus, DependencySpec, Tool};
/// # use switchboard_registry::resolution::resolve;
/// let tool = Tool { name: "today".into(), capability: "date".into(), version: "1.4.0".into(),
///     ..Default::default() };
/// let agent = Agent { id: "clock-0a1b2c3d".into(), status: AgentStatus::Healthy as i32,
///     tools: vec![tool], ..Default::default() };
/// let spec = DependencySpec { capability: "date".into(), version: "^1.2".into(), tags: vec![] };
/// let pairs = agent.tools.iter().map(|tool| (&agent, tool));
/// let resolution = resolve(&spec, pairs, Some("caller-00000000"), false);
/// assert_eq!(resolution.providers[0].agent_id, "clock-0a1b2c3d");
/// assert_eq!(resolution.reason, "1 provider at score 0, version 1.4.0");
/// ```
pub fn resolve<'a>(
    spec: &DependencySpec,
    candidates: impl IntoIterator<Item = (&'a Agent, &'a Tool)>,
    requester_agent_id: Option<&str>,
    explain: bool,
) -> DependencyResolution {
    let filters = match Filters::parse(spec) {
        Ok(filters) => filters,
        Err(reason) => return resolution(spec, Vec::new(), reason, Vec::new()),
    };
    let mut tally = Tally::default();
    let mut eligible = Vec::new();
    let mut explained = Vec::new();
    for (agent, tool) in candidates {
        if tool.capability != spec.capability {
            continue;
        }
        tally.considered += 1;
        match filters.admit(agent, tool, requester_agent_id) {
            Ok(candidate) => eligible.push(candidate),
            Err(exclusion) => {
                tally.record(&exclusion);
                if explain {
                    let reason = format!("excluded: {exclusion}");
                    explained.push((Class::Excluded, candidate(agent, tool, 0, false, reason)));
                }
            }
        }
    }

    let Some(ranking) = Ranking::of(&eligible) else {
        let reason = tally.unresolved_reason(spec, &filters);
        return resolution(spec, Vec::new(), reason, sorted(explained));
    };
    if explain {
        for e in &eligible {
            let (class, reason) = ranking.verdict(e);
            let chosen = class == Class::Chosen;
            explained.push((class, candidate(e.agent, e.tool, e.score, chosen, reason)));
        }
    }
    let providers = ranking.winners.iter().map(|e| provider(e.agent, e.tool, e.score)).collect();
    resolution(spec, providers, ranking.summary(), sorted(explained))
}

// === impl Filters ===

impl Filters {
    fn parse(spec: &DependencySpec) -> Result<Self, String> {
        if spec.capability.is_empty() {
            return Err("bad dependency spec: no capability".to_owned());
        }
        Ok(Self {
            version: VersionConstraint::parse(&spec.version)?,
            tags: TagConstraints::parse(&spec.tags)?,
        })
    }

    /// Applies rules 2–5 of the module docs, cheapest first.
    fn admit<'a>(
        &self,
        agent: &'a Agent,
        tool: &'a Tool,
        requester_agent_id: Option<&str>,
    ) -> Result<Eligible<'a>, Exclusion<'a, '_>> {
        if requester_agent_id == Some(agent.id.as_str()) {
            return Err(Exclusion::OwnTool);
        }
        let status = agent.status();
        if agent.routability() == Routability::Excluded {
            return Err(match status {
                AgentStatus::Degraded => Exclusion::ConnectionLost,
                other => Exclusion::Status(other),
            });
        }
        let version = ProviderVersion::parse(&tool.version);
        if !self.version.admits(&version) {
            return Err(Exclusion::Version(version, &self.version));
        }
        let score = match self.tags.check(&tool.tags) {
            Verdict::Match { score } => score,
            Verdict::MissingRequired(tag) => return Err(Exclusion::MissingTag(tag)),
            Verdict::Excluded(tag) => return Err(Exclusion::ExcludedTag(tag)),
        };
        Ok(Eligible { agent, tool, status, version, score })
    }
}

// === impl Eligible ===

impl Eligible<'_> {
    /// Higher tag score first, then higher version.
    fn rank(&self, other: &Self) -> Ordering {
        self.score.cmp(&other.score).then_with(|| self.version.rank(&other.version))
    }
}

// === impl Ranking ===

impl<'e, 'a> Ranking<'e, 'a> {
    /// Ranks the eligible candidates; `None` when there are none.
    fn of(eligible: &'e [Eligible<'a>]) -> Option<Self> {
        // Degraded providers serve only when no healthy one qualifies.
        let pool = if eligible.iter().any(|e| e.status == AgentStatus::Healthy) {
            AgentStatus::Healthy
        } else {
            AgentStatus::Degraded
        };
        let best = eligible.iter().filter(|e| e.status == pool).max_by(|a, b| a.rank(b))?;
        let mut winners: Vec<_> =
            eligible.iter().filter(|e| e.status == pool && e.rank(best).is_eq()).collect();
        winners.sort_unstable_by(|a, b| by_agent_and_tool(a.agent, a.tool, b.agent, b.tool));
        // Winners may differ in build metadata: report the first one's version so the summary
        // does not depend on the order candidates came in.
        let top = winners.first().copied().unwrap_or(best);
        Some(Self { pool, winners, top })
    }

    /// `2 providers at score 10, version 1.4.0`.
    fn summary(&self) -> String {
        let count = self.winners.len();
        let plural = if count == 1 { "" } else { "s" };
        let degraded = match self.pool {
            AgentStatus::Degraded => " (degraded: no healthy provider qualifies)",
            _ => "",
        };
        let (score, version) = (self.top.score, &self.top.version);
        format!("{count} provider{plural} at score {score}, version {version}{degraded}")
    }

    /// Why an eligible candidate was chosen or not.
    fn verdict(&self, e: &Eligible<'_>) -> (Class, String) {
        let top = self.top;
        if e.status != self.pool {
            (Class::NotChosen, "not chosen: degraded while healthy providers exist".to_owned())
        } else if e.score < top.score {
            (Class::NotChosen, format!("not chosen: lower score {} < {}", e.score, top.score))
        } else if e.rank(top).is_lt() {
            (Class::NotChosen, format!("not chosen: version {} below {}", e.version, top.version))
        } else {
            let status = if self.pool == AgentStatus::Healthy { "healthy" } else { "degraded" };
            (Class::Chosen, format!("chosen: score {}, version {}, {status}", e.score, e.version))
        }
    }
}

// === impl Exclusion ===

impl fmt::Display for Exclusion<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OwnTool => {
                f.write_str("own tool (an agent does not satisfy its own dependencies)")
            }
            Self::Status(AgentStatus::Expired) => f.write_str("status expired"),
            Self::ConnectionLost => f.write_str("connection lost (its heartbeat stream broke)"),
            Self::Status(_) => f.write_str("status unknown"),
            Self::Version(version, constraint) => {
                write!(f, "version {version} does not satisfy {constraint}")
            }
            Self::MissingTag(tag) => write!(f, "missing required tag {tag}"),
            Self::ExcludedTag(tag) => write!(f, "carries excluded tag {tag}"),
        }
    }
}

// === impl Tally ===

impl Tally {
    fn record(&mut self, exclusion: &Exclusion<'_, '_>) {
        let count = match exclusion {
            Exclusion::OwnTool => &mut self.own,
            Exclusion::Status(AgentStatus::Expired) | Exclusion::ConnectionLost => {
                &mut self.expired
            }
            Exclusion::Status(_) => &mut self.unknown,
            Exclusion::Version(..) => &mut self.version,
            Exclusion::MissingTag(_) | Exclusion::ExcludedTag(_) => &mut self.tags,
        };
        *count += 1;
    }

    /// Why nothing qualified, naming the rule that excluded the live candidates.
    fn unresolved_reason(&self, spec: &DependencySpec, filters: &Filters) -> String {
        let capability = &spec.capability;
        if self.considered == 0 {
            return format!("no provider of capability {capability:?}");
        }
        if self.own == self.considered {
            return format!(
                "no provider of capability {capability:?} besides the requesting agent"
            );
        }
        let (version, tags) = (&filters.version, filters.tags.filters());
        let headline = match (self.version > 0, self.tags > 0) {
            (false, false) => {
                format!("no healthy or degraded provider of capability {capability:?}")
            }
            (true, false) => format!("no healthy or degraded provider satisfies version {version}"),
            (false, true) => format!("no healthy or degraded provider satisfies tags {tags}"),
            (true, true) => format!(
                "no healthy or degraded provider satisfies version {version} and tags {tags}"
            ),
        };
        format!("{headline} ({self})")
    }
}

impl fmt::Display for Tally {
    /// `3 considered`, with a breakdown when candidates were excluded for different rules.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} considered", self.considered)?;
        let parts = [
            (self.own, "own tool"),
            (self.expired, "expired"),
            (self.unknown, "unknown status"),
            (self.version, "version mismatch"),
            (self.tags, "tag mismatch"),
        ];
        if parts.iter().filter(|(n, _)| *n > 0).count() > 1 {
            let mut separator = ": ";
            for (n, what) in parts.iter().filter(|(n, _)| *n > 0) {
                write!(f, "{separator}{n} {what}")?;
                separator = ", ";
            }
        }
        Ok(())
    }
}

// === helpers ===

fn by_agent_and_tool(a: &Agent, a_tool: &Tool, b: &Agent, b_tool: &Tool) -> Ordering {
    a.id.cmp(&b.id).then_with(|| a_tool.name.cmp(&b_tool.name))
}

/// Chosen first, then not chosen, then excluded; by agent id and tool name within each class.
fn sorted(mut explained: Vec<(Class, Candidate)>) -> Vec<Candidate> {
    explained.sort_by(|(a_class, a), (b_class, b)| {
        a_class.cmp(b_class).then_with(|| identity(a).cmp(&identity(b)))
    });
    explained.into_iter().map(|(_, candidate)| candidate).collect()
}

fn identity(candidate: &Candidate) -> Option<(&str, &str)> {
    candidate.provider.as_ref().map(|p| (p.agent_id.as_str(), p.tool_name.as_str()))
}

fn provider(agent: &Agent, tool: &Tool, score: i32) -> Provider {
    Provider {
        agent_id: agent.id.clone(),
        agent_name: agent.name.clone(),
        endpoint: agent.endpoint.clone(),
        tool_name: tool.name.clone(),
        capability: tool.capability.clone(),
        version: tool.version.clone(),
        tags: tool.tags.clone(),
        status: agent.status,
        score,
        status_cause: agent.cause() as i32,
    }
}

fn candidate(agent: &Agent, tool: &Tool, score: i32, chosen: bool, reason: String) -> Candidate {
    Candidate { provider: Some(provider(agent, tool, score)), chosen, reason }
}

fn resolution(
    spec: &DependencySpec,
    providers: Vec<Provider>,
    reason: String,
    candidates: Vec<Candidate>,
) -> DependencyResolution {
    DependencyResolution { spec: Some(spec.clone()), providers, reason, candidates }
}
