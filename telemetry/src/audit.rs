//! The audit log: one JSON object per line for every control-plane change
//! (registry) and every call (gateway), on a configurable sink.
//!
//! A record says who (the authenticated identity, `anonymous` without auth),
//! what (`action` on `target`), when (`time`, RFC 3339 UTC with
//! milliseconds), from where (`from`, the peer address) and the outcome
//! (`ok`, or the error). Writes are synchronous and unbuffered per record, so
//! a record is on the sink before the change it describes is acknowledged,
//! and a crash loses none of the acknowledged records; a sink that fails
//! is logged once per failure and never fails the request it records.
//!
//! Sinks: `off` (the default), `stdout` (or `-`), or a file path
//! (optionally `file:PATH`), opened for append and created if missing.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use serde::Serialize;

/// Where audit records go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AuditTarget {
    /// Nowhere.
    #[default]
    Off,
    /// The process's standard output.
    Stdout,
    /// A file, appended to.
    File(PathBuf),
}

impl FromStr for AuditTarget {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "" => Err("audit sink: empty (use off, stdout or a file path)".to_owned()),
            "off" | "none" => Ok(Self::Off),
            "stdout" | "-" => Ok(Self::Stdout),
            other => {
                let path = other.strip_prefix("file:").unwrap_or(other);
                if path.is_empty() {
                    return Err("audit sink: `file:` needs a path".to_owned());
                }
                Ok(Self::File(PathBuf::from(path)))
            }
        }
    }
}

/// Whether the recorded operation succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditOutcome<'a> {
    /// It took effect.
    Ok,
    /// It was refused or failed, with the reason.
    Error(&'a str),
}

impl Serialize for AuditOutcome<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(match self {
            Self::Ok => "ok",
            Self::Error(reason) => reason,
        })
    }
}

/// One audit record, borrowed from the caller so recording allocates only
/// the output line.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord<'a> {
    /// Authenticated identity (`anonymous` when auth is off).
    pub who: &'a str,
    /// What was done, e.g. `register`, `deregister`, `token.create`, `tools/call`.
    pub action: &'a str,
    /// What it was done to: an agent id, a token id, a tool name.
    pub target: &'a str,
    /// Peer address, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<&'a str>,
    /// Outcome.
    pub outcome: AuditOutcome<'a>,
    /// Anything else worth keeping (latency, argument hash, revision...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
}

#[derive(Serialize)]
struct Line<'a> {
    time: String,
    #[serde(flatten)]
    record: &'a AuditRecord<'a>,
}

enum Sink {
    Stdout,
    File(File),
}

/// A cheap-to-clone handle on the audit sink.
#[derive(Clone, Default)]
pub struct AuditLog {
    sink: Option<Arc<Mutex<Sink>>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog").field("enabled", &self.is_enabled()).finish()
    }
}

// === impl AuditLog ===

impl AuditLog {
    /// Opens the sink; `Off` records nothing.
    pub fn open(target: &AuditTarget) -> io::Result<Self> {
        let sink = match target {
            AuditTarget::Off => return Ok(Self::disabled()),
            AuditTarget::Stdout => Sink::Stdout,
            AuditTarget::File(path) => {
                let file =
                    OpenOptions::new().create(true).append(true).open(path).map_err(|error| {
                        io::Error::new(
                            error.kind(),
                            format!("audit log {}: {error}", path.display()),
                        )
                    })?;
                Sink::File(file)
            }
        };
        Ok(Self { sink: Some(Arc::new(Mutex::new(sink))) })
    }

    /// A log that records nothing.
    pub fn disabled() -> Self {
        Self { sink: None }
    }

    /// Whether records go anywhere (callers may skip building detail).
    pub fn is_enabled(&self) -> bool {
        self.sink.is_some()
    }

    /// Writes one record as one line.
    pub fn record(&self, record: &AuditRecord<'_>) {
        let Some(sink) = &self.sink else { return };
        let line = Line {
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            record,
        };
        let mut bytes = match serde_json::to_vec(&line) {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::error!(%error, "audit record could not be encoded");
                return;
            }
        };
        bytes.push(b'\n');
        // A poisoned lock only means another writer panicked mid-line; the
        // sink itself is still usable.
        let mut sink = sink.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let written = match &mut *sink {
            Sink::Stdout => io::stdout().lock().write_all(&bytes),
            Sink::File(file) => file.write_all(&bytes),
        };
        if let Err(error) = written {
            tracing::error!(%error, action = record.action, "audit record not written");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_name_the_problem() {
        assert_eq!("off".parse::<AuditTarget>(), Ok(AuditTarget::Off));
        assert_eq!("-".parse::<AuditTarget>(), Ok(AuditTarget::Stdout));
        assert_eq!(
            "file:/var/log/a.jsonl".parse::<AuditTarget>(),
            Ok(AuditTarget::File("/var/log/a.jsonl".into()))
        );
        assert!("file:".parse::<AuditTarget>().unwrap_err().contains("needs a path"));
    }

    #[test]
    fn each_record_is_one_json_line_with_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&AuditTarget::File(path.clone())).unwrap();
        log.record(&AuditRecord {
            who: "token:weather",
            action: "register",
            target: "weather-1",
            from: Some("127.0.0.1:5000"),
            outcome: AuditOutcome::Ok,
            detail: None,
        });
        log.record(&AuditRecord {
            who: "anonymous",
            action: "deregister",
            target: "weather-1",
            from: None,
            outcome: AuditOutcome::Error("permission denied"),
            detail: Some(serde_json::json!({"revision": 7})),
        });
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> =
            text.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["who"], "token:weather");
        assert_eq!(lines[0]["outcome"], "ok");
        assert_eq!(lines[1]["outcome"], "permission denied");
        assert_eq!(lines[1]["detail"]["revision"], 7);
        assert!(lines[0]["time"].as_str().unwrap().ends_with('Z'));
    }
}
