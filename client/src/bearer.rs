//! Credentials for a registry that runs with auth: a bearer token sent as
//! `authorization: Bearer <token>` metadata on every call and stream.

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status};

/// Where a registry token comes from unless told otherwise.
///
/// ```
/// assert_eq!(switchboard_client::TOKEN_ENV, "SWITCHBOARD_TOKEN");
/// ```
pub const TOKEN_ENV: &str = "SWITCHBOARD_TOKEN";

/// A channel that sends a [`Bearer`] token with every call.
pub type AuthChannel = InterceptedService<Channel, Bearer>;

/// The token a client presents to the registry, or none. `Debug` never
/// shows the secret.
///
/// ```
/// use switchboard_client::Bearer;
///
/// let bearer = Bearer::new(Some("sbt_secret")).unwrap();
/// let mut request = tonic::Request::new(());
/// bearer.apply(&mut request);
/// assert_eq!(request.metadata().get("authorization").unwrap(), "Bearer sbt_secret");
/// assert!(!format!("{bearer:?}").contains("sbt_secret"));
/// assert!(Bearer::new(Some("bad\nvalue")).is_err());
/// ```
#[derive(Clone, Default)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

/// A token that cannot travel in gRPC metadata.
#[derive(Debug, thiserror::Error)]
#[error("bad registry token: it must be printable ascii without spaces")]
pub struct BadToken;

// === impl Bearer ===

impl Bearer {
    /// Sends `token` (trimmed; `None` or empty: no credential).
    pub fn new(token: Option<&str>) -> Result<Self, BadToken> {
        let Some(token) = token.map(str::trim).filter(|t| !t.is_empty()) else {
            return Ok(Self(None));
        };
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(BadToken);
        }
        let mut value: MetadataValue<Ascii> =
            format!("Bearer {token}").parse().map_err(|_| BadToken)?;
        value.set_sensitive(true);
        Ok(Self(Some(value)))
    }

    /// The token in `SWITCHBOARD_TOKEN`, or none.
    pub fn from_env() -> Result<Self, BadToken> {
        Self::new(std::env::var(TOKEN_ENV).ok().as_deref())
    }

    /// True when a token is set.
    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }

    /// Adds the token to one request.
    pub fn apply<T>(&self, request: &mut Request<T>) {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
    }

    /// `channel`, sending this token on every call.
    pub fn channel(&self, channel: Channel) -> AuthChannel {
        InterceptedService::new(channel, self.clone())
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        self.apply(&mut request);
        Ok(request)
    }
}

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Bearer(<token>)" } else { "Bearer(none)" })
    }
}
