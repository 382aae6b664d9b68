//! Builders shared by the test files.

#![allow(dead_code)]

use switchboard_proto::v1::{DependencySpec, RegisterAgentRequest, Tool};

/// A registration of `name` providing `capability` at `version` with `tags`.
pub fn provider(
    name: &str,
    capability: &str,
    version: &str,
    tags: &[&str],
) -> RegisterAgentRequest {
    RegisterAgentRequest {
        name: name.into(),
        endpoint: format!("http://127.0.0.1:9/{name}/mcp"),
        tools: vec![Tool {
            name: format!("{}_tool", capability.replace('.', "_")),
            capability: capability.into(),
            version: version.into(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            description: format!("provides {capability}"),
            ..Tool::default()
        }],
        ..RegisterAgentRequest::default()
    }
}

/// A registration of `name` whose tool `use_it` depends on `capability`.
pub fn consumer(
    name: &str,
    capability: &str,
    version: &str,
    tags: &[&str],
) -> RegisterAgentRequest {
    RegisterAgentRequest {
        name: name.into(),
        endpoint: format!("http://127.0.0.1:9/{name}/mcp"),
        tools: vec![Tool {
            name: "use_it".into(),
            dependencies: vec![DependencySpec {
                capability: capability.into(),
                version: version.into(),
                tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            }],
            ..Tool::default()
        }],
        ..RegisterAgentRequest::default()
    }
}
