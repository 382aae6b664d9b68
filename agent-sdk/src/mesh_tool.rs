//! Mesh metadata layered on an ordinary rmcp tool: the capability it
//! provides, its version and tags, and the dependencies it needs.

use switchboard_proto::v1::DependencySpec;

use crate::Dependency;

/// Mesh metadata of one tool, attached with [`crate::Agent::tool`].
#[derive(Debug, Clone, Default)]
pub struct MeshTool {
    pub(crate) capability: String,
    pub(crate) version: String,
    pub(crate) tags: Vec<String>,
    pub(crate) dependencies: Vec<Dependency>,
}

impl MeshTool {
    /// The capability this tool provides to other agents.
    pub fn capability(mut self, capability: &str) -> Self {
        capability.clone_into(&mut self.capability);
        self
    }

    /// The capability's semver version (default `1.0.0`).
    pub fn version(mut self, version: &str) -> Self {
        version.clone_into(&mut self.version);
        self
    }

    /// A tag describing this provider (`eu`, `fast`).
    pub fn tag(mut self, tag: &str) -> Self {
        self.tags.push(tag.to_owned());
        self
    }

    /// A dependency this tool calls through its proxy.
    pub fn depends_on(mut self, dependency: &Dependency) -> Self {
        self.dependencies.push(dependency.clone());
        self
    }

    pub(crate) fn specs(&self) -> Vec<DependencySpec> {
        self.dependencies.iter().map(|d| d.spec().clone()).collect()
    }
}
