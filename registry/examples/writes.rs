//! Drives durable registrations through a [`Registry`] on a sled store in a
//! temporary directory, without gRPC: the subject of instruction counts of
//! the write path (`valgrind --tool=callgrind`) and of `perf`.
//!
//!     cargo build --release -p switchboard-registry --example writes
//!     target/release/examples/writes [REGISTRATIONS] [CLIENTS]
//!
//! Each client registers new agents of five tools (a JSON Schema each, tags,
//! one dependency: the shape `switchboard-bench register` sends) back to
//! back; every call returns once its batch is flushed.

use std::sync::Arc;

use switchboard_proto::v1::{DependencySpec, RegisterAgentRequest, Tool};
use switchboard_registry::{Registry, RegistryConfig, SledStore};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let total: usize = args.next().map_or(Ok(2000), |n| n.parse())?;
    let clients: usize = args.next().map_or(Ok(64), |n| n.parse())?;
    let dir = tempfile::tempdir()?;
    let store = Arc::new(SledStore::open(dir.path())?);
    let (registry, tasks) = Registry::start(RegistryConfig::default(), store).await?;
    let started = std::time::Instant::now();
    let mut workers = Vec::new();
    for client in 0..clients {
        let registry = registry.clone();
        workers.push(tokio::spawn(async move {
            for n in (client..total).step_by(clients) {
                registry.register(request(n)).await?;
            }
            Ok::<_, switchboard_registry::RegistryError>(())
        }));
    }
    for worker in workers {
        worker.await??;
    }
    let elapsed = started.elapsed();
    let rate = total as f64 / elapsed.as_secs_f64();
    println!("{total} registrations, {clients} clients: {elapsed:.2?}, {rate:.0}/s");
    drop(registry);
    tasks.shutdown().await;
    Ok(())
}

/// Agent `n`: five tools, each with the same small JSON Schema.
fn request(n: usize) -> RegisterAgentRequest {
    let tools = (0..5)
        .map(|t| Tool {
            name: format!("tool_{t}"),
            capability: if t == 0 { format!("bench.cap{}", n % 50) } else { String::new() },
            version: format!("1.{}.0", n % 5),
            tags: vec!["bench".into(), if n.is_multiple_of(2) { "eu" } else { "us" }.into()],
            description: format!("Benchmark tool {t} of agent {n}: takes a text and a count."),
            input_schema: Some(schema().into()),
            dependencies: if t == 4 {
                vec![DependencySpec {
                    capability: "bench.base".into(),
                    version: ">=1.0".into(),
                    tags: vec!["+eu".into()],
                }]
            } else {
                Vec::new()
            },
            ..Tool::default()
        })
        .collect();
    RegisterAgentRequest {
        agent_id: format!("writes-{n}"),
        name: "writes".into(),
        version: "1.0.0".into(),
        endpoint: format!("http://127.0.0.1:9/writes/{n}/mcp"),
        tools,
        ..RegisterAgentRequest::default()
    }
}

/// A string and an integer, the string required: the bench's argument schema.
fn schema() -> prost_types::Struct {
    let schema = serde_json::json!({
        "type": "object",
        "properties": {"text": {"type": "string"}, "count": {"type": "integer"}},
        "required": ["text"],
    });
    switchboard_client::proto_json::to_struct(schema.as_object().unwrap_or(&serde_json::Map::new()))
}
