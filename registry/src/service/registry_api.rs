//! `switchboard.v1.RegistryService`.

mod page_token;

use std::collections::BTreeMap;

use serde_json::json;
use switchboard_proto::v1::registry_service_server::RegistryService;
use switchboard_proto::v1::{
    Agent, AgentStatus, CapabilitySummary, DeregisterAgentRequest, DeregisterAgentResponse,
    GetAgentRequest, GetAgentResponse, ListAgentsRequest, ListAgentsResponse,
    ListCapabilitiesRequest, ListCapabilitiesResponse, RegisterAgentRequest, RegisterAgentResponse,
    ResolveDependenciesRequest, ResolveDependenciesResponse,
};
use tonic::{Request, Response, Status};

use crate::access::AgentAction;
use crate::audit;
use crate::error::RegistryError;
use crate::registry::Registry;
use crate::resolution::parse_version;
use crate::validate;

use super::heartbeat_parameters;

const DEFAULT_PAGE_SIZE: usize = 100;
const MAX_PAGE_SIZE: usize = 1000;
const MAX_RESOLVE_SPECS: usize = 64;

/// Implements `RegistryService` over a [`Registry`].
#[derive(Clone)]
pub struct RegistryApi {
    registry: Registry,
}

impl RegistryApi {
    /// Serves `registry`.
    pub fn new(registry: Registry) -> Self {
        Self { registry }
    }

    /// The agent with its in-memory last heartbeat filled in.
    fn with_heartbeat(&self, agent: &Agent) -> Agent {
        let mut agent = agent.clone();
        agent.last_heartbeat_at =
            self.registry.last_heartbeat(&agent.id).map(prost_types::Timestamp::from);
        agent
    }
}

#[tonic::async_trait]
impl RegistryService for RegistryApi {
    #[tracing::instrument(name = "RegisterAgent", skip_all, fields(agent = %request.get_ref().name))]
    async fn register_agent(
        &self,
        request: Request<RegisterAgentRequest>,
    ) -> Result<Response<RegisterAgentResponse>, Status> {
        let caller = self.registry.access().authenticate_fresh(&request).await?;
        let actor = audit::actor(&request, &caller);
        let request = request.into_inner();
        // A new agent's id is assigned on success; until then its name says who it is.
        let named =
            if request.agent_id.is_empty() { &request.name } else { &request.agent_id }.clone();
        let result = match caller.check_registration(&request) {
            Ok(()) => self.registry.register_as(request, caller.claim(AgentAction::Register)).await,
            Err(refused) => Err(refused),
        };
        let target = result.as_ref().map_or(named.as_str(), |r| r.agent_id.as_str());
        audit::requested(self.registry.audit(), &actor, "register", target, &result, |r| {
            let change = match (r.created, r.changed) {
                (true, _) => "created",
                (false, true) => "changed",
                (false, false) => "unchanged",
            };
            json!({ "revision": r.revision, "change": change })
        });
        let registered = result?;
        tracing::info!(agent_id = %registered.agent_id, revision = registered.revision, "registered");
        Ok(Response::new(RegisterAgentResponse {
            agent_id: registered.agent_id,
            revision: registered.revision,
            store_epoch: registered.epoch.to_string(),
            resolutions: registered.wiring.tools.clone(),
            heartbeat: Some(heartbeat_parameters(self.registry.config())),
            resolution_revision: registered.wiring.revision,
            created: registered.created,
        }))
    }

    #[tracing::instrument(name = "DeregisterAgent", skip_all, fields(agent_id = %request.get_ref().agent_id))]
    async fn deregister_agent(
        &self,
        request: Request<DeregisterAgentRequest>,
    ) -> Result<Response<DeregisterAgentResponse>, Status> {
        let caller = self.registry.access().authenticate_fresh(&request).await?;
        let actor = audit::actor(&request, &caller);
        let agent_id = &request.get_ref().agent_id;
        let result = match caller.check_agent_action(AgentAction::Deregister) {
            Ok(()) => {
                let claim = caller.claim(AgentAction::Deregister);
                self.registry.deregister_as(agent_id, claim).await
            }
            Err(refused) => Err(refused),
        };
        audit::requested(
            self.registry.audit(),
            &actor,
            "deregister",
            agent_id,
            &result,
            |r| json!({ "revision": r }),
        );
        let revision = result?;
        tracing::info!(revision, "deregistered");
        Ok(Response::new(DeregisterAgentResponse { revision }))
    }

    #[tracing::instrument(name = "GetAgent", skip_all, fields(agent_id = %request.get_ref().agent_id))]
    async fn get_agent(
        &self,
        request: Request<GetAgentRequest>,
    ) -> Result<Response<GetAgentResponse>, Status> {
        self.registry.access().authenticate_fresh(&request).await?.require_read()?;
        let id = &request.get_ref().agent_id;
        validate::agent_id("agent_id", id)?;
        let snapshot = self.registry.consistent_snapshot().await?;
        let agent =
            snapshot.agents.get(id).ok_or_else(|| RegistryError::AgentNotFound(id.clone()))?;
        let wiring = snapshot.wiring.get(id).cloned().unwrap_or_default();
        Ok(Response::new(GetAgentResponse {
            agent: Some(self.with_heartbeat(agent)),
            resolutions: wiring.tools.clone(),
            resolution_revision: wiring.revision,
            revision: snapshot.revision,
        }))
    }

    #[tracing::instrument(name = "ListAgents", skip_all)]
    async fn list_agents(
        &self,
        request: Request<ListAgentsRequest>,
    ) -> Result<Response<ListAgentsResponse>, Status> {
        self.registry.access().authenticate_fresh(&request).await?.require_read()?;
        let request = request.into_inner();
        let page_size = page_size(request.page_size)?;
        for (field, value) in
            [("capability", &request.capability), ("tag", &request.tag), ("name", &request.name)]
        {
            validate::filter_name(field, value)?;
        }
        let status = AgentStatus::try_from(request.status).map_err(|_| {
            RegistryError::invalid("status", format!("unknown status {}", request.status))
        })?;
        let snapshot = self.registry.consistent_snapshot().await?;
        let after = page_token::decode(&snapshot.epoch, &request)?;
        let range = match &after {
            Some(last) => snapshot.agents.range::<_, String>((
                std::ops::Bound::Excluded(last.clone()),
                std::ops::Bound::Unbounded,
            )),
            None => snapshot.agents.range::<_, String>(..),
        };
        let mut agents = Vec::new();
        let mut next_page_token = String::new();
        for (id, agent) in range {
            if !matches(agent, &request, status) {
                continue;
            }
            if agents.len() == page_size {
                // More matches exist beyond this page.
                let last = agents_last_id(&agents).unwrap_or(id);
                next_page_token = page_token::encode(&snapshot.epoch, &request, last);
                break;
            }
            agents.push(self.with_heartbeat(agent));
        }
        Ok(Response::new(ListAgentsResponse {
            agents,
            next_page_token,
            revision: snapshot.revision,
        }))
    }

    #[tracing::instrument(name = "ListCapabilities", skip_all)]
    async fn list_capabilities(
        &self,
        request: Request<ListCapabilitiesRequest>,
    ) -> Result<Response<ListCapabilitiesResponse>, Status> {
        self.registry.access().authenticate_fresh(&request).await?.require_read()?;
        let snapshot = self.registry.consistent_snapshot().await?;
        let mut summaries: BTreeMap<&str, CapabilitySummary> = BTreeMap::new();
        let mut versions: BTreeMap<&str, Vec<semver::Version>> = BTreeMap::new();
        for capability in snapshot.providers.keys() {
            for (agent, tool) in snapshot.candidates(capability) {
                let status = agent.status();
                if status == AgentStatus::Expired {
                    continue;
                }
                let summary = summaries.entry(capability).or_insert_with(|| CapabilitySummary {
                    capability: capability.clone(),
                    ..CapabilitySummary::default()
                });
                summary.providers += 1;
                if status == AgentStatus::Healthy {
                    summary.healthy_providers += 1;
                }
                if let Ok(version) = parse_version(&tool.version) {
                    versions.entry(capability).or_default().push(version);
                }
            }
        }
        let capabilities = summaries
            .into_iter()
            .map(|(name, mut summary)| {
                let mut list = versions.remove(name).unwrap_or_default();
                list.sort_unstable_by(|a, b| b.cmp(a));
                list.dedup();
                summary.versions = list.iter().map(ToString::to_string).collect();
                summary
            })
            .collect();
        Ok(Response::new(ListCapabilitiesResponse { capabilities, revision: snapshot.revision }))
    }

    #[tracing::instrument(name = "ResolveDependencies", skip_all)]
    async fn resolve_dependencies(
        &self,
        request: Request<ResolveDependenciesRequest>,
    ) -> Result<Response<ResolveDependenciesResponse>, Status> {
        self.registry.access().authenticate_fresh(&request).await?.require_read()?;
        let request = request.into_inner();
        if request.dependencies.len() > MAX_RESOLVE_SPECS {
            return Err(RegistryError::invalid(
                "dependencies",
                format!(
                    "{} specs, at most {MAX_RESOLVE_SPECS} allowed",
                    request.dependencies.len()
                ),
            )
            .into());
        }
        let limits = &self.registry.config().limits;
        for (i, spec) in request.dependencies.iter().enumerate() {
            validate::dependency(&format!("dependencies[{i}]"), spec, limits)?;
        }
        let requester = Some(request.requester_agent_id.as_str()).filter(|id| !id.is_empty());
        let snapshot = self.registry.consistent_snapshot().await?;
        let resolutions = request
            .dependencies
            .iter()
            .map(|spec| snapshot.resolve(spec, requester, true))
            .collect();
        Ok(Response::new(ResolveDependenciesResponse { resolutions, revision: snapshot.revision }))
    }
}

fn agents_last_id(agents: &[Agent]) -> Option<&String> {
    agents.last().map(|a| &a.id)
}

fn matches(agent: &Agent, request: &ListAgentsRequest, status: AgentStatus) -> bool {
    (request.name.is_empty() || agent.name == request.name)
        && (status == AgentStatus::Unspecified || agent.status() == status)
        && (request.capability.is_empty()
            || agent.tools.iter().any(|t| t.capability == request.capability))
        && (request.tag.is_empty() || agent.tools.iter().any(|t| t.tags.contains(&request.tag)))
}

fn page_size(requested: i32) -> Result<usize, RegistryError> {
    match usize::try_from(requested) {
        Ok(0) => Ok(DEFAULT_PAGE_SIZE),
        Ok(size) if size <= MAX_PAGE_SIZE => Ok(size),
        _ => Err(RegistryError::invalid(
            "page_size",
            format!("{requested} is out of range 0..={MAX_PAGE_SIZE}"),
        )),
    }
}
