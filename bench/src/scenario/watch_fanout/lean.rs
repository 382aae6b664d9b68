//! A watcher that decodes only what it reads.
//!
//! The generated `WatchResponse` decodes every agent whole: five tools with
//! their JSON Schemas as `Struct` trees, a few hundred allocations per event.
//! At 200 changes/s and 1,000 watchers that is 200k such decodes a second in
//! the load generator, on the cores the registry needs — and the etcd watcher
//! it is compared with reads its value as opaque bytes. This message keeps
//! the event type and the agent's labels (field numbers of `WatchResponse`
//! and `Agent`); prost skips every other field without building it. The
//! bytes on the wire are the same.

use std::collections::HashMap;

use switchboard_proto::codec::CompactCodec;
use switchboard_proto::v1::WatchRequest;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Status, Streaming};

/// The gRPC path of Watch.
const WATCH_PATH: &str = "/switchboard.v1.WatchService/Watch";

/// A `WatchResponse` with only its type and its agent's labels.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LeanEvent {
    /// `WatchResponse.type`.
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    /// `WatchResponse.agent`, labels only.
    #[prost(message, optional, tag = "4")]
    pub agent: Option<LeanAgent>,
}

/// An `Agent` with only its labels.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LeanAgent {
    /// `Agent.labels`.
    #[prost(map = "string, string", tag = "5")]
    pub labels: HashMap<String, String>,
}

/// Opens a watch whose events decode as [`LeanEvent`]s.
pub async fn watch(
    channel: Channel,
    request: WatchRequest,
) -> Result<Streaming<LeanEvent>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.map_err(|e| Status::unavailable(format!("watch connection: {e}")))?;
    let codec = CompactCodec::<WatchRequest, LeanEvent>::default();
    let path = PathAndQuery::from_static(WATCH_PATH);
    let response = grpc.server_streaming(tonic::Request::new(request), path, codec).await?;
    Ok(response.into_inner())
}
