//! The client: one balanced channel over every endpoint, typed calls on it.
//!
//! Calls are balanced over the endpoints and a dead member is redialled by
//! the calls that pick it, so one dead etcd member costs some calls, never
//! the client. Plaintext endpoints use tonic's balancer; TLS endpoints,
//! which tonic's balancer cannot dial with our connector, get one lazily
//! connected channel each under tower's power-of-two-choices balancer,
//! which also passes over a member whose connection just failed (see
//! [`transport`]). Nothing is retried here:
//! only the caller knows whether a write may be repeated. The one exception
//! is an expired authentication token, which etcd refuses before doing
//! anything: the client re-authenticates and repeats the call once.

mod lease;
mod transport;
mod watch;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use switchboard_tls::ClientTls;
use tonic::metadata::AsciiMetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Endpoint;

use crate::config::EtcdConfig;
use crate::error::{EtcdError, EtcdResult};
use crate::pb::{
    self, KeyValue, RangeRequest, RangeResponse, TxnRequest, TxnResponse, auth_client::AuthClient,
    cluster_client::ClusterClient, kv_client::KvClient, lease_client::LeaseClient,
    maintenance_client::MaintenanceClient, watch_client::WatchClient,
};
use transport::Transport;

pub use lease::LeaseKeeper;
pub use watch::WatchStream;

/// Largest message the client accepts: a range page or a watch response
/// may carry many values of up to etcd's request limit (1.5 MiB) each.
const MAX_DECODE: usize = 256 * 1024 * 1024;

/// Keys per page when reading a whole prefix.
const PAGE: i64 = 128;

type Service = InterceptedService<Transport, TokenInterceptor>;

/// A cheap-to-clone handle on an etcd cluster.
#[derive(Clone)]
pub struct EtcdClient {
    channel: Transport,
    token: Arc<ArcSwapOption<AsciiMetadataValue>>,
    user: Option<Arc<(String, String)>>,
    /// The TLS configuration, for explaining a refused connection.
    tls: Option<ClientTls>,
    /// Whether any call succeeded yet (so the endpoints' scheme is right).
    answered: Arc<AtomicBool>,
    request_timeout: Duration,
    /// How many members there are: a call no member received is tried on
    /// each at most once.
    members: usize,
}

/// Adds the authentication token, when there is one, to every call.
#[derive(Clone)]
struct TokenInterceptor(Arc<ArcSwapOption<AsciiMetadataValue>>);

// === impl EtcdClient ===

impl EtcdClient {
    /// Connects to `config.endpoints` (lazily: an endpoint that is down now
    /// is retried in the background) and authenticates when a user is set.
    pub async fn connect(config: EtcdConfig) -> EtcdResult<Self> {
        if config.endpoints.is_empty() {
            return Err(EtcdError::Config("no endpoints".to_owned()));
        }
        let urls = config.urls()?;
        let mut endpoints = Vec::with_capacity(urls.urls.len());
        for (endpoint, url) in urls.urls {
            let parsed = Endpoint::from_shared(url)
                .map_err(|source| EtcdError::Endpoint { endpoint: endpoint.clone(), source })?
                .connect_timeout(config.connect_timeout)
                .tcp_nodelay(true)
                // Half-open connections to a member that vanished are caught
                // by pings, not by TCP state.
                .http2_keep_alive_interval(Duration::from_secs(5))
                .keep_alive_timeout(Duration::from_secs(5))
                .keep_alive_while_idle(true);
            endpoints.push(parsed);
        }
        let members = endpoints.len();
        let client = Self {
            members,
            channel: transport::balance(endpoints, urls.tls.clone()),
            tls: urls.tls,
            answered: Arc::new(AtomicBool::new(false)),
            token: Arc::new(ArcSwapOption::empty()),
            user: config.user.map(Arc::new),
            request_timeout: config.request_timeout,
        };
        if client.user.is_some() {
            client.authenticate().await?;
        }
        Ok(client)
    }

    /// Reads `key`.
    pub async fn get(&self, key: Vec<u8>) -> EtcdResult<Option<KeyValue>> {
        let response = self.range(RangeRequest { key, ..RangeRequest::default() }).await?;
        Ok(response.kvs.into_iter().next())
    }

    /// One range read.
    pub async fn range(&self, request: RangeRequest) -> EtcdResult<RangeResponse> {
        let kv = self.kv();
        self.unary("range", request, move |request| {
            let mut kv = kv.clone();
            async move { kv.range(request).await }
        })
        .await
    }

    /// Every key under `prefix`, read page by page at one revision (so the
    /// result is a consistent snapshot), and that revision.
    pub async fn get_prefix(&self, prefix: &[u8]) -> EtcdResult<(Vec<KeyValue>, i64)> {
        let end = crate::prefix_end(prefix);
        let mut key = prefix.to_vec();
        let mut revision = 0;
        let mut kvs = Vec::new();
        loop {
            let page = self
                .range(RangeRequest {
                    key: key.clone(),
                    range_end: end.clone(),
                    limit: PAGE,
                    revision,
                    ..RangeRequest::default()
                })
                .await?;
            if revision == 0 {
                revision = page.header.map_or(0, |header| header.revision);
            }
            let more = page.more;
            kvs.extend(page.kvs);
            match kvs.last() {
                Some(last) if more => {
                    // The next page starts just after the last key read.
                    key = last.key.clone();
                    key.push(0);
                }
                _ => return Ok((kvs, revision)),
            }
        }
    }

    /// Writes `key` (attached to `lease` unless 0); returns the revision.
    pub async fn put(&self, key: Vec<u8>, value: Vec<u8>, lease: i64) -> EtcdResult<i64> {
        let kv = self.kv();
        let request = pb::PutRequest { key, value, lease };
        let response = self
            .unary("put", request, move |request| {
                let mut kv = kv.clone();
                async move { kv.put(request).await }
            })
            .await?;
        Ok(response.header.map_or(0, |header| header.revision))
    }

    /// Deletes every key under `prefix`; returns how many.
    pub async fn delete_prefix(&self, prefix: &[u8]) -> EtcdResult<i64> {
        let kv = self.kv();
        let request =
            pb::DeleteRangeRequest { key: prefix.to_vec(), range_end: crate::prefix_end(prefix) };
        let response = self
            .unary("delete", request, move |request| {
                let mut kv = kv.clone();
                async move { kv.delete_range(request).await }
            })
            .await?;
        Ok(response.deleted)
    }

    /// One transaction (see [`crate::ops`] for its parts).
    pub async fn txn(&self, request: TxnRequest) -> EtcdResult<TxnResponse> {
        let kv = self.kv();
        self.unary("txn", request, move |request| {
            let mut kv = kv.clone();
            async move { kv.txn(request).await }
        })
        .await
    }

    /// Drops etcd's history before `revision`: watches from an older
    /// revision fail with [`EtcdError::Compacted`] afterwards.
    pub async fn compact(&self, revision: i64) -> EtcdResult<()> {
        let kv = self.kv();
        let request = pb::CompactionRequest { revision, physical: true };
        self.unary("compact", request, move |request| {
            let mut kv = kv.clone();
            async move { kv.compact(request).await }
        })
        .await?;
        Ok(())
    }

    /// The cluster's id: the same from every member, new when etcd is
    /// created from scratch.
    pub async fn cluster_id(&self) -> EtcdResult<u64> {
        let cluster = ClusterClient::with_interceptor(self.channel.clone(), self.interceptor());
        let response = self
            .unary("member list", pb::MemberListRequest {}, move |request| {
                let mut cluster = cluster.clone();
                async move { cluster.member_list(request).await }
            })
            .await?;
        Ok(response.header.map_or(0, |header| header.cluster_id))
    }

    /// The status of whichever member answers.
    pub async fn status(&self) -> EtcdResult<pb::StatusResponse> {
        let maintenance =
            MaintenanceClient::with_interceptor(self.channel.clone(), self.interceptor());
        self.unary("status", pb::StatusRequest {}, move |request| {
            let mut maintenance = maintenance.clone();
            async move { maintenance.status(request).await }
        })
        .await
    }

    /// Whether the client authenticates (and so may renew a token).
    fn has_user(&self) -> bool {
        self.user.is_some()
    }

    /// Exchanges the configured user and password for a fresh token.
    async fn authenticate(&self) -> EtcdResult<()> {
        let Some(user) = &self.user else { return Ok(()) };
        let mut auth = AuthClient::new(self.channel.clone());
        let mut request = tonic::Request::new(pb::AuthenticateRequest {
            name: user.0.clone(),
            password: user.1.clone(),
        });
        request.set_timeout(self.request_timeout);
        let response = auth.authenticate(request).await.map_err(|status| EtcdError::Call {
            op: "authenticate",
            status: self.explain(status),
        })?;
        let token = AsciiMetadataValue::try_from(response.into_inner().token).map_err(|_| {
            EtcdError::Protocol { op: "authenticate", message: "token is not ascii".to_owned() }
        })?;
        self.token.store(Some(Arc::new(token)));
        Ok(())
    }

    /// Runs one unary call with the request timeout; an expired token is
    /// renewed and the call repeated once.
    async fn unary<Req, Resp, F, Fut>(
        &self,
        op: &'static str,
        message: Req,
        call: F,
    ) -> EtcdResult<Resp>
    where
        Req: Clone,
        F: Fn(tonic::Request<Req>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
    {
        let request = |message: Req| {
            let mut request = tonic::Request::new(message);
            request.set_timeout(self.request_timeout);
            request
        };
        let mut answer = call(request(message.clone())).await;
        for _ in 1..self.members {
            match &answer {
                // Nothing reached etcd: the balancer now avoids that member,
                // so the next try goes to another. Safe for writes too.
                Err(status) if never_sent(status) => {
                    answer = call(request(message.clone())).await;
                }
                _ => break,
            }
        }
        match answer {
            Ok(response) => {
                self.answered.store(true, Ordering::Relaxed);
                Ok(response.into_inner())
            }
            Err(status) if status.code() == tonic::Code::Unauthenticated && self.user.is_some() => {
                tracing::debug!(%status, "etcd token refused; authenticating again");
                self.authenticate().await?;
                call(request(message))
                    .await
                    .map(tonic::Response::into_inner)
                    .map_err(|status| EtcdError::Call { op, status: self.explain(status) })
            }
            Err(status) => Err(EtcdError::Call { op, status: self.explain(status) }),
        }
    }

    /// `status` with its likely cause when the connection was closed for a
    /// reason the transport does not pass on ("operation was canceled"):
    /// a member asked for a client certificate this client does not have,
    /// or, before any call succeeded, a plaintext client reached a TLS port.
    fn explain(&self, status: tonic::Status) -> tonic::Status {
        let transport = matches!(
            status.code(),
            tonic::Code::Cancelled | tonic::Code::Unavailable | tonic::Code::Unknown
        );
        let cause = match &self.tls {
            Some(tls) => tls.missing_certificate(),
            // Not `Unavailable`: a refused connection says so itself.
            None => (status.code() != tonic::Code::Unavailable
                && !self.answered.load(Ordering::Relaxed))
            .then(|| {
                "etcd closed the connection (if it serves TLS, give https:// endpoints or \
                 --etcd-tls-ca)"
                    .to_owned()
            }),
        };
        match cause {
            Some(cause) if transport => {
                tonic::Status::new(status.code(), format!("{}: {cause}", status.message()))
            }
            _ => status,
        }
    }

    fn interceptor(&self) -> TokenInterceptor {
        TokenInterceptor(self.token.clone())
    }

    fn kv(&self) -> KvClient<Service> {
        KvClient::with_interceptor(self.channel.clone(), self.interceptor())
            .max_decoding_message_size(MAX_DECODE)
    }

    fn watch_client(&self) -> WatchClient<Service> {
        WatchClient::with_interceptor(self.channel.clone(), self.interceptor())
            .max_decoding_message_size(MAX_DECODE)
    }

    fn lease_client(&self) -> LeaseClient<Service> {
        LeaseClient::with_interceptor(self.channel.clone(), self.interceptor())
    }
}

/// Whether a call failed before any member received it: its connection
/// could not be made.
fn never_sent(status: &tonic::Status) -> bool {
    if status.code() != tonic::Code::Unavailable {
        return false;
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(error) = cause {
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotConnected
            )
        {
            return true;
        }
        cause = error.source();
    }
    false
}

impl std::fmt::Debug for EtcdClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdClient").field("user", &self.user.as_ref().map(|u| &u.0)).finish()
    }
}

// === impl TokenInterceptor ===

impl Interceptor for TokenInterceptor {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(token) = self.0.load_full() {
            request.metadata_mut().insert("token", (*token).clone());
        }
        Ok(request)
    }
}
