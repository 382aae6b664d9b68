//! The access policy: rules over who calls (principal, groups, scopes) and
//! what (tool name, capability, tags, agent), first match wins.
//!
//! A policy is a TOML file:
//!
//! ```toml
//! # Without a matching rule: deny (the default) or allow.
//! default = "deny"
//!
//! [[rules]]
//! name = "ci-reads-dates"
//! effect = "allow"
//! principals = ["key:ci"]
//! tools = ["get_*"]
//!
//! [[rules]]
//! name = "no-payments-for-contractors"
//! effect = "deny"
//! groups = ["contractors"]
//! capabilities = ["payments"]
//!
//! [[rules]]
//! name = "staff"
//! effect = "allow"
//! principals = ["jwt:*@example.com"]
//! ```
//!
//! Within a rule every given field must match (a list matches when any of
//! its patterns does; `*` is a wildcard); a field left out matches anything.
//! Unknown fields are errors, so a typo never widens access. Rules are
//! compiled once per load: a decision is a walk over at most a few dozen
//! precompiled patterns, with no allocation.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use serde::Deserialize;

use super::Principal;
use super::glob::{self, Glob};
use crate::routing_table::ToolFacts;

/// A loaded, validated policy.
///
/// ```
/// use switchboard_gateway::ToolFacts;
/// use switchboard_gateway::access::{AuthMethod, Decision, Policy, Principal};
///
/// let policy = Policy::parse(r#"
///     [[rules]]
///     name = "ci-reads"
///     effect = "allow"
///     principals = ["key:ci"]
///     tools = ["get_*"]
/// "#).unwrap();
/// let ci = Principal::new(AuthMethod::ApiKey, "ci", vec![], vec![]);
/// let facts = ToolFacts::default();
/// assert_eq!(policy.decide(&ci, "get_date", &facts), Decision::Allow);
/// assert_eq!(policy.decide(&ci, "set_date", &facts), Decision::Deny("default".into()));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    rules: Vec<Rule>,
    default_allow: bool,
}

/// What a policy says about one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The call may go ahead.
    Allow,
    /// Refused by the named rule (`default` when no rule matched).
    Deny(Arc<str>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    name: Arc<str>,
    allow: bool,
    principals: Vec<Glob>,
    groups: Vec<Glob>,
    scopes: Vec<Glob>,
    tools: Vec<Glob>,
    capabilities: Vec<Glob>,
    tags: Vec<Glob>,
    agents: Vec<Glob>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    default: Option<String>,
    #[serde(default)]
    rules: Vec<RuleFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    name: String,
    effect: String,
    #[serde(default)]
    principals: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    tools: Vec<String>,
    #[serde(default)]
    capabilities: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    agents: Vec<String>,
}

// === impl Policy ===

impl Policy {
    /// The policy when auth is on and no file is given: every authenticated
    /// caller may call everything.
    pub fn allow_all() -> Self {
        Self { rules: Vec::new(), default_allow: true }
    }

    /// Parses and validates a policy; the error names the rule and field.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: PolicyFile = toml::from_str(text).map_err(|e| format!("policy: {e}"))?;
        let default_allow = match file.default.as_deref() {
            None | Some("deny") => false,
            Some("allow") => true,
            Some(other) => {
                return Err(format!(
                    "policy: default: {other:?} is neither \"allow\" nor \"deny\""
                ));
            }
        };
        let mut rules: Vec<Rule> = Vec::with_capacity(file.rules.len());
        for (i, rule) in file.rules.into_iter().enumerate() {
            let name = rule.name.trim();
            if name.is_empty() {
                return Err(format!("policy: rule #{}: name must not be empty", i + 1));
            }
            if rules.iter().any(|r| &*r.name == name) {
                return Err(format!("policy: rule {name:?}: name used twice"));
            }
            let allow = match rule.effect.as_str() {
                "allow" => true,
                "deny" => false,
                other => {
                    return Err(format!(
                        "policy: rule {name:?}: effect {other:?} is neither \"allow\" nor \"deny\""
                    ));
                }
            };
            let compile = |field: &str, patterns: &[String]| -> Result<Vec<Glob>, String> {
                if patterns.iter().any(|p| p.trim().is_empty()) {
                    return Err(format!("policy: rule {name:?}: {field}: empty pattern"));
                }
                Ok(patterns.iter().map(|p| Glob::new(p.trim())).collect())
            };
            rules.push(Rule {
                name: Arc::from(name),
                allow,
                principals: compile("principals", &rule.principals)?,
                groups: compile("groups", &rule.groups)?,
                scopes: compile("scopes", &rule.scopes)?,
                tools: compile("tools", &rule.tools)?,
                capabilities: compile("capabilities", &rule.capabilities)?,
                tags: compile("tags", &rule.tags)?,
                agents: compile("agents", &rule.agents)?,
            });
        }
        Ok(Self { rules, default_allow })
    }

    /// Reads and validates the policy file at `path`.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("policy {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{} ({})", e, path.display()))
    }

    /// Rules in the policy.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// True when the policy has no rules (only its default).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// May `principal` call the tool exposed as `tool`, described by `facts`?
    pub fn decide(&self, principal: &Principal, tool: &str, facts: &ToolFacts) -> Decision {
        for rule in &self.rules {
            if rule.matches(principal, tool, facts) {
                return if rule.allow {
                    Decision::Allow
                } else {
                    Decision::Deny(rule.name.clone())
                };
            }
        }
        if self.default_allow { Decision::Allow } else { Decision::Deny(Arc::from("default")) }
    }
}

// === impl Rule ===

impl Rule {
    fn matches(&self, principal: &Principal, tool: &str, facts: &ToolFacts) -> bool {
        let field = |globs: &[Glob], text: &str| globs.is_empty() || glob::any(globs, text);
        let some = |globs: &[Glob], texts: &[String]| {
            globs.is_empty() || texts.iter().any(|t| glob::any(globs, t))
        };
        field(&self.principals, &principal.id)
            && some(&self.groups, &principal.groups)
            && some(&self.scopes, &principal.scopes)
            && field(&self.tools, tool)
            && field(&self.capabilities, &facts.capability)
            && some(&self.tags, &facts.tags)
            && field(&self.agents, &facts.agent)
    }
}

/// The policy in force, swapped whole when its file changes.
#[derive(Debug, Clone)]
pub(crate) struct LivePolicy {
    current: Arc<ArcSwap<Policy>>,
}

// === impl LivePolicy ===

impl LivePolicy {
    pub(crate) fn fixed(policy: Policy) -> Self {
        Self { current: Arc::new(ArcSwap::from_pointee(policy)) }
    }

    pub(crate) fn load(&self) -> arc_swap::Guard<Arc<Policy>> {
        self.current.load()
    }

    /// Checks `path` every `every` and installs it when it changed and is
    /// valid; a bad file keeps the policy in force and logs why. Stops
    /// when `stop` is cancelled. `reloaded` counts outcomes (`ok`, `invalid`).
    pub(crate) fn watch(
        &self,
        path: PathBuf,
        every: Duration,
        reloaded: impl Fn(&'static str) + Send + 'static,
        stop: tokio_util::sync::CancellationToken,
    ) {
        let current = self.current.clone();
        tokio::spawn(async move {
            let mut seen = stamp(&path);
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = ticks.tick() => {}
                }
                let now = stamp(&path);
                if now == seen {
                    continue;
                }
                seen = now;
                match Policy::load(&path) {
                    Ok(policy) => {
                        tracing::info!(path = %path.display(), rules = policy.len(), "policy reloaded");
                        current.store(Arc::new(policy));
                        reloaded("ok");
                    }
                    Err(error) => {
                        tracing::warn!(%error, "policy file rejected; keeping the policy in force");
                        reloaded("invalid");
                    }
                }
            }
        });
    }
}

/// What tells a changed file: modification time, length and content hash
/// (an editor may rewrite a file within one mtime tick).
fn stamp(path: &Path) -> Option<(std::time::SystemTime, u64, [u8; 32])> {
    use sha2::Digest as _;
    let meta = std::fs::metadata(path).ok()?;
    let bytes = std::fs::read(path).ok()?;
    Some((meta.modified().ok()?, meta.len(), sha2::Sha256::digest(&bytes).into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::AuthMethod;

    fn facts(agent: &str, capability: &str, tags: &[&str]) -> ToolFacts {
        ToolFacts {
            agent: agent.into(),
            capability: capability.into(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        }
    }

    #[test]
    fn first_matching_rule_decides_and_names_itself() {
        let policy = Policy::parse(
            r#"
            [[rules]]
            name = "no-payments-for-contractors"
            effect = "deny"
            groups = ["contractors"]
            capabilities = ["payments"]

            [[rules]]
            name = "staff"
            effect = "allow"
            principals = ["jwt:*@example.com"]

            [[rules]]
            name = "public-tools"
            effect = "allow"
            tags = ["public"]
            "#,
        )
        .unwrap();
        let contractor =
            Principal::new(AuthMethod::Jwt, "bob@example.com", vec![], vec!["contractors".into()]);
        let pay = facts("billing", "payments", &[]);
        let weather = facts("weather", "weather", &["public"]);
        assert_eq!(
            policy.decide(&contractor, "charge", &pay),
            Decision::Deny("no-payments-for-contractors".into())
        );
        assert_eq!(policy.decide(&contractor, "forecast", &weather), Decision::Allow);
        let outsider = Principal::new(AuthMethod::ApiKey, "ci", vec![], vec![]);
        assert_eq!(policy.decide(&outsider, "forecast", &weather), Decision::Allow);
        assert_eq!(policy.decide(&outsider, "charge", &pay), Decision::Deny("default".into()));
    }

    #[test]
    fn bad_files_are_refused_with_the_field_named() {
        let cases = [
            ("[[rules]]\nname = \"a\"\neffect = \"permit\"", "effect \"permit\""),
            ("[[rules]]\nname = \"a\"\neffect = \"allow\"\ntool = [\"x\"]", "unknown field `tool`"),
            ("[[rules]]\nname = \"\"\neffect = \"allow\"", "rule #1: name must not be empty"),
            (
                "[[rules]]\nname = \"a\"\neffect = \"allow\"\n[[rules]]\nname = \"a\"\neffect = \"deny\"",
                "name used twice",
            ),
            ("default = \"maybe\"", "default: \"maybe\""),
            ("[[rules]]\nname = \"a\"\neffect = \"allow\"\ntools = [\"\"]", "tools: empty pattern"),
        ];
        for (text, expected) in cases {
            let error = Policy::parse(text).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
