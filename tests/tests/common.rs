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

/// A registry serving the sled store in `dir` on any loopback ports (to fill
/// a store a test then copies or reopens).
#[allow(clippy::expect_used)]
pub async fn serve_sled(dir: &std::path::Path) -> switchboard_registry::RunningRegistry {
    let any = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let store = switchboard_registry::StoreSpec::Sled { data_dir: dir.to_path_buf() };
    switchboard_registry::serve(switchboard_registry::RegistryConfig::default(), store, any, any)
        .await
        .expect("serve a registry on sled")
}
