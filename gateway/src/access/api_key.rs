//! API keys: secrets the registry issued (`switchboard key create`),
//! checked by asking the registry (`AccessService.Authenticate`), so every
//! gateway replica sees the same keys and revocations.
//!
//! Answers are cached by the secret's SHA-256 for at most [`KEY_TTL`]: a
//! revoke is in force on every gateway within a second, and a client
//! calling in a loop costs the registry one call per second, not one per
//! request. Refusals are cached as briefly, so a client retrying a bad key
//! cannot hammer the registry either. The cache is bounded
//! ([`MAX_CACHED`]); a registry that cannot be reached is an
//! authentication failure of its own cause, never a pass.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use switchboard_proto::v1::access_service_client::AccessServiceClient;
use switchboard_proto::v1::{AuthenticateRequest, Role};
use tokio::time::Instant;
use tonic::transport::Channel;

use super::{AuthFailure, AuthMethod, Principal};

/// Longest an answer of the registry is trusted.
pub const KEY_TTL: Duration = Duration::from_secs(1);
/// Most keys remembered at once.
pub const MAX_CACHED: usize = 4096;

type Answer = Result<Arc<Principal>, AuthFailure>;

/// Checks API keys at the registry.
pub(crate) struct KeyChecker {
    client: AccessServiceClient<Channel>,
    /// The gateway's own registry token, when the registry wants one.
    token: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
    cache: Mutex<HashMap<[u8; 32], (Instant, Answer)>>,
}

// === impl KeyChecker ===

impl KeyChecker {
    pub(crate) fn new(channel: Channel, token: Option<&str>) -> Result<Self, String> {
        let token = token
            .map(|t| format!("Bearer {t}").parse())
            .transpose()
            .map_err(|_| "registry token: not a valid header value".to_owned())?;
        Ok(Self {
            client: AccessServiceClient::new(channel),
            token,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The principal `secret` stands for, or why not.
    pub(crate) async fn verify(&self, secret: &str, hash: &[u8; 32]) -> Answer {
        let now = Instant::now();
        if let Some((at, answer)) = self.cache.lock().get(hash)
            && now.saturating_duration_since(*at) < KEY_TTL
        {
            return answer.clone();
        }
        let answer = self.ask(secret).await;
        // A registry we could not reach is not an answer about the key.
        if answer != Err(AuthFailure::KeyServiceUnavailable) {
            let mut cache = self.cache.lock();
            if cache.len() >= MAX_CACHED {
                cache.retain(|_, (at, _)| now.saturating_duration_since(*at) < KEY_TTL);
                if cache.len() >= MAX_CACHED {
                    cache.clear();
                }
            }
            cache.insert(*hash, (now, answer.clone()));
        }
        answer
    }

    async fn ask(&self, secret: &str) -> Answer {
        let mut request = tonic::Request::new(AuthenticateRequest { secret: secret.to_owned() });
        request.set_timeout(Duration::from_secs(2));
        if let Some(token) = &self.token {
            request.metadata_mut().insert("authorization", token.clone());
        }
        let mut client = self.client.clone();
        let response = match client.authenticate(request).await {
            Ok(response) => response.into_inner(),
            Err(status) if status.code() == tonic::Code::Unauthenticated => {
                return Err(AuthFailure::UnknownKey);
            }
            Err(status) => {
                tracing::warn!(code = ?status.code(), message = status.message(), "api key not checked: the registry did not answer");
                return Err(AuthFailure::KeyServiceUnavailable);
            }
        };
        let Some(token) = response.token else { return Err(AuthFailure::UnknownKey) };
        if token.role() != Role::Client {
            // Registry tokens (agents, operators) are not gateway keys.
            return Err(AuthFailure::NotAClientKey);
        }
        Ok(Arc::new(Principal::new(AuthMethod::ApiKey, &token.name, token.scopes, Vec::new())))
    }
}
