//! Which heartbeat streams each agent has open.
//!
//! An agent counts as connected while **any** of its streams is open, not
//! only the newest: a reconnect race (or an operator's `grpcurl` session)
//! can leave two streams for one agent, and whichever breaks first must not
//! hide the break of the other. The agent is disconnected — DEGRADED at once,
//! its dependents told — only when its last open stream ends.

use std::collections::HashMap;

/// Open heartbeat streams, by agent id.
#[derive(Debug, Default)]
pub(crate) struct Streams {
    by_agent: HashMap<String, Vec<u64>>,
    open: usize,
    next_id: u64,
}

/// What closing a stream left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closed {
    /// It was the agent's last open stream.
    Last,
    /// The agent still has another open stream.
    OthersOpen,
    /// The stream was not open (already closed).
    Unknown,
}

// === impl Streams ===

impl Streams {
    /// Records a stream bound to `agent_id`: a new one (`None`), or one
    /// re-bound after the agent registered again on it (`Some(id)`, kept as
    /// is). Returns its id.
    pub fn open(&mut self, agent_id: &str, existing: Option<u64>) -> u64 {
        let id = existing.unwrap_or_else(|| {
            self.next_id += 1;
            self.next_id
        });
        let ids = self.by_agent.entry(agent_id.to_owned()).or_default();
        if !ids.contains(&id) {
            ids.push(id);
            self.open += 1;
        }
        id
    }

    /// Records that stream `id` of `agent_id` ended.
    pub fn close(&mut self, agent_id: &str, id: u64) -> Closed {
        let Some(ids) = self.by_agent.get_mut(agent_id) else { return Closed::Unknown };
        let Some(at) = ids.iter().position(|open| *open == id) else { return Closed::Unknown };
        ids.swap_remove(at);
        self.open -= 1;
        if !ids.is_empty() {
            return Closed::OthersOpen;
        }
        self.by_agent.remove(agent_id);
        Closed::Last
    }

    /// True while `agent_id` has an open stream here.
    pub fn holds(&self, agent_id: &str) -> bool {
        self.by_agent.contains_key(agent_id)
    }

    /// Open streams in all.
    pub fn len(&self) -> usize {
        self.open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agent_is_disconnected_only_when_its_last_stream_ends() {
        let mut streams = Streams::default();
        let older = streams.open("p", None);
        let newer = streams.open("p", None);
        assert_eq!(streams.len(), 2);
        assert_eq!(streams.close("p", newer), Closed::OthersOpen);
        assert_eq!(streams.close("p", older), Closed::Last);
        assert_eq!(streams.close("p", older), Closed::Unknown, "closed once");
        assert_eq!(streams.len(), 0);
    }

    #[test]
    fn re_binding_a_stream_keeps_one_entry() {
        let mut streams = Streams::default();
        let id = streams.open("p", None);
        assert_eq!(streams.open("p", Some(id)), id);
        assert_eq!(streams.len(), 1);
        assert_eq!(streams.close("p", id), Closed::Last);
    }
}
