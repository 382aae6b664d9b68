//! `switchboard.v1.AccessService`: tokens, `WhoAmI`, and `Authenticate`
//! for gateways.

use switchboard_proto::v1::access_service_server::AccessService;
use switchboard_proto::v1::{
    AuthenticateRequest, AuthenticateResponse, CreateTokenRequest, CreateTokenResponse,
    ListTokensRequest, ListTokensResponse, RevokeTokenRequest, RevokeTokenResponse, Role,
    WhoAmIRequest, WhoAmIResponse,
};
use tonic::{Request, Response, Status};

use serde_json::json;

use crate::access::ANONYMOUS;
use crate::audit;
use crate::error::RegistryError;
use crate::registry::Registry;

/// Implements `AccessService` over a [`Registry`].
#[derive(Clone)]
pub struct AccessApi {
    registry: Registry,
}

impl AccessApi {
    /// Serves `registry`.
    pub fn new(registry: Registry) -> Self {
        Self { registry }
    }
}

#[tonic::async_trait]
impl AccessService for AccessApi {
    #[tracing::instrument(name = "CreateToken", skip_all, fields(name = %request.get_ref().name))]
    async fn create_token(
        &self,
        request: Request<CreateTokenRequest>,
    ) -> Result<Response<CreateTokenResponse>, Status> {
        let access = self.registry.access();
        refuse_without_auth(access.enabled(), "tokens")?;
        let caller = access.authenticate_fresh(&request).await?;
        let actor = audit::actor(&request, &caller);
        let name = request.get_ref().name.clone();
        let result = match caller.require_admin("create tokens") {
            Ok(()) => access.create(request.into_inner()).await,
            Err(refused) => Err(refused),
        };
        // Never the secret: the token's id, role and scope say what was issued.
        let target = result.as_ref().map_or(name.as_str(), |(token, _)| token.id.as_str());
        audit::requested(self.registry.audit(), &actor, "token.create", target, &result, |r| {
            let token = &r.0;
            json!({
                "name": token.name,
                "role": token.role().as_str_name(),
                "agent_names": token.agent_names,
                "provides": token.provides,
                "scopes": token.scopes,
            })
        });
        let (token, secret) = result?;
        Ok(Response::new(CreateTokenResponse { token: Some(token), secret }))
    }

    #[tracing::instrument(name = "ListTokens", skip_all)]
    async fn list_tokens(
        &self,
        request: Request<ListTokensRequest>,
    ) -> Result<Response<ListTokensResponse>, Status> {
        let access = self.registry.access();
        refuse_without_auth(access.enabled(), "tokens")?;
        access.authenticate_fresh(&request).await?.require_admin("list tokens")?;
        let tokens = access.list(request.get_ref().include_inactive);
        Ok(Response::new(ListTokensResponse { tokens }))
    }

    #[tracing::instrument(name = "RevokeToken", skip_all, fields(id = %request.get_ref().id))]
    async fn revoke_token(
        &self,
        request: Request<RevokeTokenRequest>,
    ) -> Result<Response<RevokeTokenResponse>, Status> {
        let access = self.registry.access();
        refuse_without_auth(access.enabled(), "tokens")?;
        let caller = access.authenticate_fresh(&request).await?;
        let actor = audit::actor(&request, &caller);
        let key = &request.get_ref().id;
        let result = match caller.require_admin("revoke tokens") {
            Ok(()) => access.revoke(key).await,
            Err(refused) => Err(refused),
        };
        let target = result.as_ref().map_or(key.as_str(), |token| token.id.as_str());
        audit::requested(
            self.registry.audit(),
            &actor,
            "token.revoke",
            target,
            &result,
            |token| json!({ "name": token.name }),
        );
        let token = result?;
        Ok(Response::new(RevokeTokenResponse { token: Some(token) }))
    }

    #[tracing::instrument(name = "WhoAmI", skip_all)]
    async fn who_am_i(
        &self,
        request: Request<WhoAmIRequest>,
    ) -> Result<Response<WhoAmIResponse>, Status> {
        let access = self.registry.access();
        if !access.enabled() {
            return Ok(Response::new(WhoAmIResponse {
                identity: ANONYMOUS.into(),
                role: Role::Admin as i32,
                token: None,
            }));
        }
        let caller = access.authenticate_fresh(&request).await?;
        Ok(Response::new(WhoAmIResponse {
            identity: caller.identity().to_owned(),
            role: caller.role() as i32,
            token: caller.token().cloned(),
        }))
    }

    #[tracing::instrument(name = "Authenticate", skip_all)]
    async fn authenticate(
        &self,
        request: Request<AuthenticateRequest>,
    ) -> Result<Response<AuthenticateResponse>, Status> {
        let access = self.registry.access();
        refuse_without_auth(access.enabled(), "api keys")?;
        access.authenticate_fresh(&request).await?.require_viewer("authenticate api keys")?;
        let secret = &request.get_ref().secret;
        if secret.is_empty() {
            return Err(RegistryError::invalid("secret", "must not be empty").into());
        }
        let key = access.authenticate_secret(secret)?;
        Ok(Response::new(AuthenticateResponse { token: key.token().cloned() }))
    }
}

/// Tokens exist only on a registry with auth on; say so rather than
/// issuing secrets nothing checks.
fn refuse_without_auth(enabled: bool, what: &str) -> Result<(), Status> {
    if enabled {
        return Ok(());
    }
    Err(Status::failed_precondition(format!(
        "{what}: the registry runs without auth; start it with --auth"
    )))
}
