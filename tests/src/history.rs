//! A history of everything the clients of a fault-injection run did and saw,
//! and a checker that proves the registry's guarantees over it: record
//! while the faults fly, check once the run is over.
//!
//! Every client operation is one [`Op`]: who did it, what it was, when it was
//! invoked and when it completed (wall clock, because the checker compares
//! these times with the registry's own timestamps: `status_changed_at`,
//! event times), and how it ended. An operation that failed in a way that
//! does not say whether it took effect (a timeout, a dropped connection, a
//! registry that died mid-call) is *indeterminate*: the checker allows both
//! outcomes for it, and nothing more.
//!
//! The recorder is a plain `Mutex<Vec<Op>>`, never held across an `.await`:
//! recording is a push, and the checker works on a copy once the run is over.

mod check;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use switchboard_proto::v1::{Agent, AgentStatus, WatchResponse};
use tonic::Code;

use crate::View;

pub use check::{Findings, Rule, Rules, Violation, check, findings};

/// The shared recorder of one run (cheap to clone).
#[derive(Clone, Default)]
pub struct History {
    ops: Arc<Mutex<Vec<Op>>>,
}

/// One client operation, or one thing a client observed.
#[derive(Debug, Clone)]
pub struct Op {
    /// Who: an agent id, `writer-3`, `watch-1`, `reader`, `driver`, `registry`.
    pub client: String,
    /// What.
    pub kind: OpKind,
    /// When the client started it.
    pub invoked_at: SystemTime,
    /// When the client saw it end (equal to `invoked_at` for observations).
    pub completed_at: SystemTime,
    /// How it ended.
    pub result: Outcome,
}

/// What an operation was.
#[derive(Debug, Clone)]
pub enum OpKind {
    /// `RegisterAgent` of this agent.
    Register {
        /// The agent.
        agent_id: String,
    },
    /// `DeregisterAgent` of this agent.
    Deregister {
        /// The agent.
        agent_id: String,
    },
    /// A heartbeat answered by an ack: invoked when the heartbeat was sent,
    /// completed when its ack arrived.
    HeartbeatAck {
        /// The agent.
        agent_id: String,
        /// Sequence number echoed by the ack.
        sequence: u64,
        /// Status the ack reported.
        status: AgentStatus,
    },
    /// Wiring received by an agent: a push on its heartbeat stream, or the
    /// resolutions of its registration.
    Push {
        /// The agent told.
        agent_id: String,
        /// Resolution revision of the wiring.
        resolution_revision: u64,
        /// Every provider of every dependency, with its status.
        providers: Vec<(String, AgentStatus)>,
    },
    /// A watcher (the op's client) opened a stream: a new segment begins.
    WatchStart {
        /// `since_revision` of the request.
        since: u64,
        /// `store_epoch` of the request.
        epoch: String,
    },
    /// A message of the watcher's current segment.
    WatchEvent {
        /// The message as received.
        message: WatchResponse,
    },
    /// The watcher's current segment ended.
    WatchEnd {
        /// The status it ended with.
        status: String,
    },
    /// `GetAgent`.
    Get {
        /// The agent asked for.
        agent_id: String,
        /// The answer (None when the call failed).
        agent: Option<Agent>,
    },
    /// `ListAgents` of every agent, in one page.
    List {
        /// Revision of the answer.
        revision: u64,
        /// The agents (normalized).
        view: View,
    },
    /// An agent was killed (SIGKILL of its process, or its connections reset
    /// and its task dropped): invoked when the kill was sent.
    Crash {
        /// The agent.
        agent_id: String,
    },
    /// A fault held from `invoked_at` until it was healed at `completed_at`.
    Fault {
        /// What it hit: an agent id, `registry`, or a watcher.
        target: String,
        /// Which fault: `partition`, `delay`, `loss`, `freeze`, `kill`, …
        what: String,
    },
    /// A registry process was (re)started: invoked when spawned, completed
    /// once it listened.
    Restart,
}

/// How an operation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Done (observations, acks, reads).
    Ok,
    /// A write acknowledged at this revision of the store `epoch`. Revision 0:
    /// acknowledged, revision unknown (an agent process registered itself).
    Written {
        /// Revision the registry answered.
        revision: u64,
        /// Store epoch the registry answered.
        epoch: String,
    },
    /// The call failed with this status.
    Failed {
        /// gRPC code.
        code: Code,
        /// Message.
        message: String,
    },
}

/// Operations by category, for reports.
pub type Counts = BTreeMap<&'static str, usize>;

// === impl History ===

impl History {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an operation that completed now.
    pub fn record(
        &self,
        client: &str,
        kind: OpKind,
        invoked_at: SystemTime,
        result: Outcome,
    ) -> Op {
        let op = Op {
            client: client.to_owned(),
            kind,
            invoked_at,
            completed_at: SystemTime::now(),
            result,
        };
        self.ops.lock().unwrap().push(op.clone());
        op
    }

    /// Records an observation (invoked and completed now).
    pub fn observe(&self, client: &str, kind: OpKind) {
        self.record(client, kind, SystemTime::now(), Outcome::Ok);
    }

    /// Records a fault that held from `started` until now.
    pub fn fault(&self, target: &str, what: &str, started: SystemTime) {
        let kind = OpKind::Fault { target: target.to_owned(), what: what.to_owned() };
        self.record("driver", kind, started, Outcome::Ok);
    }

    /// A copy of every operation so far, in the order recorded.
    pub fn ops(&self) -> Vec<Op> {
        self.ops.lock().unwrap().clone()
    }

    /// Operations by category (`register ok`, `register failed`, `ack`, …).
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::new();
        for op in self.ops.lock().unwrap().iter() {
            *counts.entry(op.category()).or_default() += 1;
        }
        counts
    }
}

// === impl Op ===

impl Op {
    /// The agent a write, ack, push, read or crash is about.
    pub fn agent_id(&self) -> Option<&str> {
        match &self.kind {
            OpKind::Register { agent_id }
            | OpKind::Deregister { agent_id }
            | OpKind::HeartbeatAck { agent_id, .. }
            | OpKind::Push { agent_id, .. }
            | OpKind::Get { agent_id, .. }
            | OpKind::Crash { agent_id } => Some(agent_id),
            _ => None,
        }
    }

    /// True for register and deregister calls.
    pub fn is_write(&self) -> bool {
        matches!(self.kind, OpKind::Register { .. } | OpKind::Deregister { .. })
    }

    /// The category this op is counted under in reports.
    pub fn category(&self) -> &'static str {
        let failed = matches!(self.result, Outcome::Failed { .. });
        match (&self.kind, failed) {
            (OpKind::Register { .. }, false) => "register ok",
            (OpKind::Register { .. }, true) => "register failed",
            (OpKind::Deregister { .. }, false) => "deregister ok",
            (OpKind::Deregister { .. }, true) => "deregister failed",
            (OpKind::HeartbeatAck { .. }, _) => "heartbeat ack",
            (OpKind::Push { .. }, _) => "wiring push",
            (OpKind::WatchStart { .. }, _) => "watch (re)start",
            (OpKind::WatchEvent { .. }, _) => "watch message",
            (OpKind::WatchEnd { .. }, _) => "watch end",
            (OpKind::Get { .. } | OpKind::List { .. }, false) => "read ok",
            (OpKind::Get { .. } | OpKind::List { .. }, true) => "read failed",
            (OpKind::Crash { .. }, _) => "fault: agent crash",
            (OpKind::Fault { .. }, _) => "fault: other",
            (OpKind::Restart, _) => "registry start",
        }
    }
}

// === impl Outcome ===

impl Outcome {
    /// The outcome of a finished gRPC call.
    pub fn failed(status: &tonic::Status) -> Self {
        Self::Failed { code: status.code(), message: status.message().to_owned() }
    }

    /// True when the call failed in a way that leaves its effect unknown: it
    /// may or may not have been applied.
    pub fn is_indeterminate(&self) -> bool {
        match self {
            Self::Failed { code, .. } => !matches!(
                code,
                Code::InvalidArgument
                    | Code::NotFound
                    | Code::FailedPrecondition
                    | Code::AlreadyExists
                    | Code::OutOfRange
                    | Code::Unimplemented
            ),
            _ => false,
        }
    }

    /// The acknowledged revision of a write.
    pub fn revision(&self) -> Option<u64> {
        match self {
            Self::Written { revision, .. } => Some(*revision),
            _ => None,
        }
    }
}
