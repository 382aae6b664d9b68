//! Leases: keys that vanish when their owner stops renewing.

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;

use super::EtcdClient;
use crate::error::{EtcdError, EtcdResult};
use crate::pb::{
    LeaseGrantRequest, LeaseKeepAliveRequest, LeaseKeepAliveResponse, LeaseRevokeRequest,
};

/// A keep-alive stream for one lease: one renewal per call, one answer each,
/// so at most one request is ever queued.
pub struct LeaseKeeper {
    id: i64,
    requests: mpsc::Sender<LeaseKeepAliveRequest>,
    responses: Streaming<LeaseKeepAliveResponse>,
}

// === impl EtcdClient ===

impl EtcdClient {
    /// Creates a lease of `ttl_seconds`; returns its id and granted TTL.
    pub async fn grant_lease(&self, ttl_seconds: i64) -> EtcdResult<(i64, i64)> {
        let lease = self.lease_client();
        let response = self
            .unary("lease grant", LeaseGrantRequest { ttl: ttl_seconds, id: 0 }, move |request| {
                let mut lease = lease.clone();
                async move { lease.lease_grant(request).await }
            })
            .await?;
        if !response.error.is_empty() {
            return Err(EtcdError::Protocol { op: "lease grant", message: response.error });
        }
        Ok((response.id, response.ttl))
    }

    /// Revokes a lease, deleting every key attached to it.
    pub async fn revoke_lease(&self, id: i64) -> EtcdResult<()> {
        let lease = self.lease_client();
        self.unary("lease revoke", LeaseRevokeRequest { id }, move |request| {
            let mut lease = lease.clone();
            async move { lease.lease_revoke(request).await }
        })
        .await?;
        Ok(())
    }

    /// Opens a keep-alive stream for lease `id` and renews it once.
    ///
    /// The first renewal is queued before the call: etcd sends the stream's
    /// response headers with its first answer, so the call would otherwise
    /// wait for headers that never come.
    pub async fn lease_keeper(&self, id: i64) -> EtcdResult<LeaseKeeper> {
        let (requests, outbound) = mpsc::channel(1);
        requests.send(LeaseKeepAliveRequest { id }).await.map_err(|_| closed())?;
        let responses = self
            .lease_client()
            .lease_keep_alive(ReceiverStream::new(outbound))
            .await
            .map_err(EtcdError::call("lease keep-alive"))?
            .into_inner();
        let mut keeper = LeaseKeeper { id, requests, responses };
        keeper.answer().await?;
        Ok(keeper)
    }
}

// === impl LeaseKeeper ===

impl LeaseKeeper {
    /// Renews the lease; returns its new TTL in seconds. A lease etcd no
    /// longer has (expired or revoked) is an error: its keys are gone.
    pub async fn keep_alive(&mut self) -> EtcdResult<i64> {
        let request = LeaseKeepAliveRequest { id: self.id };
        self.requests.send(request).await.map_err(|_| closed())?;
        self.answer().await
    }

    async fn answer(&mut self) -> EtcdResult<i64> {
        let response = match self.responses.message().await {
            Ok(Some(response)) => response,
            Ok(None) => return Err(closed()),
            Err(status) => return Err(EtcdError::Call { op: "lease keep-alive", status }),
        };
        if response.ttl <= 0 {
            return Err(EtcdError::Protocol {
                op: "lease keep-alive",
                message: format!("lease {:x} is gone", self.id),
            });
        }
        Ok(response.ttl)
    }

    /// The lease's id.
    pub fn id(&self) -> i64 {
        self.id
    }
}

impl std::fmt::Debug for LeaseKeeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseKeeper").field("id", &self.id).finish()
    }
}

fn closed() -> EtcdError {
    EtcdError::Protocol { op: "lease keep-alive", message: "stream closed".to_owned() }
}
