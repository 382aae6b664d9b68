//! `switchboard audit`: read the registry's audit log (the JSON lines file
//! of `--audit-log`), filtered by time, action, identity and target, as a
//! table or as the raw lines.
//!
//! A line that is not an audit record (a torn last line after a crash, a
//! stray edit) is reported on stderr with its line number and skipped: one
//! bad line must not hide every record after it.

use std::io::BufRead as _;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::Args;
use serde::Deserialize;
use switchboard_telemetry::audit::AuditTarget;

use crate::duration;
use crate::ops::ExitCode;
use crate::ops::table::Table;

/// Flags of `switchboard audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only records from this far back (30s, 15m, 1h, 7d) or since this RFC 3339 time
    /// [default: every record].
    #[arg(long)]
    pub since: Option<String>,
    /// The audit log file [default: the registry's SWITCHBOARD_AUDIT_LOG].
    #[arg(long, env = "SWITCHBOARD_AUDIT_LOG")]
    pub file: Option<String>,
    /// Only this action (register, deregister, labels, status, evict).
    #[arg(long)]
    pub action: Option<String>,
    /// Only this identity (`anonymous`, `registry`, `token:NAME`...).
    #[arg(long)]
    pub who: Option<String>,
    /// Only records about this target (an agent id).
    #[arg(long)]
    pub target: Option<String>,
    /// Print the matching records as the JSON lines they are stored as.
    #[arg(long)]
    pub json: bool,
}

/// The fields of a record the filters and the table use.
#[derive(Debug, Deserialize)]
struct Record {
    time: String,
    who: String,
    action: String,
    target: String,
    #[serde(default)]
    from: Option<String>,
    outcome: String,
    #[serde(default)]
    detail: Option<serde_json::Value>,
}

/// What to keep.
#[derive(Debug, Default)]
struct Filter {
    since: Option<DateTime<Utc>>,
    action: Option<String>,
    who: Option<String>,
    target: Option<String>,
}

/// Reads, filters and prints the audit log.
pub fn run(args: AuditArgs) -> anyhow::Result<()> {
    let path = log_file(args.file.as_deref())?;
    let filter = Filter {
        since: args.since.as_deref().map(|text| since(text, Utc::now())).transpose()?,
        action: args.action,
        who: args.who,
        target: args.target,
    };
    let file = std::fs::File::open(&path).map_err(|error| {
        ExitCode::error(ExitCode::NOT_FOUND, format!("audit log {}: {error}", path.display()))
    })?;
    let mut reader = std::io::BufReader::new(file);
    let mut table = Table::new(&["TIME", "WHO", "ACTION", "TARGET", "FROM", "OUTCOME", "DETAIL"]);
    let mut bytes = Vec::new();
    let mut number = 0;
    loop {
        bytes.clear();
        let read = reader.read_until(b'\n', &mut bytes).map_err(|error| {
            ExitCode::error(ExitCode::FAILED, format!("audit log {}: {error}", path.display()))
        })?;
        if read == 0 {
            break;
        }
        number += 1;
        let line = String::from_utf8_lossy(&bytes);
        let line = line.trim_end();
        if line.trim().is_empty() {
            continue;
        }
        match parse(line) {
            Ok((record, time)) if filter.keeps(&record, time) => {
                if args.json {
                    println!("{line}");
                } else {
                    table.row(cells(record));
                }
            }
            Ok(_) => {}
            Err(why) => {
                eprintln!(
                    "switchboard audit: {}:{number}: not an audit record: {why}",
                    path.display()
                )
            }
        }
    }
    if !args.json {
        print!("{}", table.render());
    }
    Ok(())
}

/// The file to read: `--file`, or the registry's sink when it is a file.
fn log_file(given: Option<&str>) -> anyhow::Result<PathBuf> {
    let usage = |message: String| ExitCode::error(ExitCode::USAGE, message);
    let Some(text) = given else {
        return Err(usage("no audit log: give --file PATH (or set SWITCHBOARD_AUDIT_LOG)".into()));
    };
    match text.parse::<AuditTarget>().map_err(usage)? {
        AuditTarget::File(path) => Ok(path),
        AuditTarget::Off | AuditTarget::Stdout => {
            Err(usage(format!("--file {text:?}: the audit log is not a file; give --file PATH")))
        }
    }
}

/// The start of the window: `text` back from `now`, or an RFC 3339 time.
fn since(text: &str, now: DateTime<Utc>) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(back) = duration::parse(text) {
        let back = chrono::Duration::from_std(back).unwrap_or(chrono::Duration::MAX);
        return Ok(now.checked_sub_signed(back).unwrap_or(DateTime::<Utc>::MIN_UTC));
    }
    DateTime::parse_from_rfc3339(text).map(|time| time.with_timezone(&Utc)).map_err(|_| {
        ExitCode::error(
            ExitCode::USAGE,
            format!("--since {text:?}: want a duration (30s, 15m, 1h, 7d) or an RFC 3339 time"),
        )
    })
}

/// One line as a record and its time.
fn parse(line: &str) -> Result<(Record, DateTime<Utc>), String> {
    let record: Record = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let time = DateTime::parse_from_rfc3339(&record.time)
        .map_err(|e| format!("time {:?}: {e}", record.time))?
        .with_timezone(&Utc);
    Ok((record, time))
}

fn cells(record: Record) -> Vec<String> {
    let detail = record.detail.map(|d| d.to_string()).unwrap_or_default();
    let from = record.from.unwrap_or_else(|| "-".into());
    vec![record.time, record.who, record.action, record.target, from, record.outcome, detail]
}

// === impl Filter ===

impl Filter {
    fn keeps(&self, record: &Record, time: DateTime<Utc>) -> bool {
        let same =
            |wanted: &Option<String>, value: &str| wanted.as_deref().is_none_or(|w| w == value);
        self.since.is_none_or(|since| time >= since)
            && same(&self.action, &record.action)
            && same(&self.who, &record.who)
            && same(&self.target, &record.target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"time":"2026-01-02T03:04:05.678Z","who":"anonymous","action":"register","target":"hello-1","from":"127.0.0.1:5000","outcome":"ok","detail":{"revision":3}}"#;

    #[test]
    fn since_takes_durations_and_rfc3339_times_and_names_the_flag() {
        let now = DateTime::parse_from_rfc3339("2026-01-08T00:00:00Z").unwrap().to_utc();
        assert_eq!(since("1h", now).unwrap().to_rfc3339(), "2026-01-07T23:00:00+00:00");
        assert_eq!(since("7d", now).unwrap().to_rfc3339(), "2026-01-01T00:00:00+00:00");
        let fixed = since("2026-01-02T00:00:00+01:00", now).unwrap();
        assert_eq!(fixed.to_rfc3339(), "2026-01-01T23:00:00+00:00");
        assert!(since("yesterday", now).unwrap_err().to_string().contains("--since"));
    }

    #[test]
    fn filters_match_exactly_and_bad_lines_say_why() {
        let (record, time) = parse(LINE).unwrap();
        assert!(Filter::default().keeps(&record, time));
        let who = Filter { who: Some("anonymous".into()), ..Filter::default() };
        assert!(who.keeps(&record, time));
        let action = Filter { action: Some("deregister".into()), ..Filter::default() };
        assert!(!action.keeps(&record, time));
        let later =
            Filter { since: Some(time + chrono::Duration::seconds(1)), ..Filter::default() };
        assert!(!later.keeps(&record, time));
        assert_eq!(cells(record)[6], r#"{"revision":3}"#);
        assert!(parse(r#"{"time":"x"}"#).unwrap_err().contains("missing field"));
        assert!(parse(&LINE.replace("2026-01-02T03", "soon")).unwrap_err().contains("time"));
    }

    #[test]
    fn the_file_comes_from_the_flag_or_the_registry_sink() {
        assert_eq!(log_file(Some("file:/var/a.jsonl")).unwrap(), PathBuf::from("/var/a.jsonl"));
        assert!(log_file(Some("stdout")).unwrap_err().to_string().contains("not a file"));
        assert!(log_file(None).unwrap_err().to_string().contains("--file"));
    }
}
