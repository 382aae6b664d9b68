//! Reading a Server-Sent Events stream: the `data` of each event, as it
//! arrives (events without data, such as priming events, are skipped),
//! keeping the last event id and `retry` hint for a reconnect.

use std::pin::Pin;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt as _};

use crate::upstream::{UpstreamError, classify};

pub(crate) type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, UpstreamError>> + Send>>;

/// Most bytes one event may hold before the stream counts as broken.
const MAX_EVENT: usize = 16 * 1024 * 1024;

/// The events of one upstream SSE answer.
pub(crate) struct SseReader {
    body: ByteStream,
    buffer: BytesMut,
    last_id: Option<String>,
    retry: Option<Duration>,
}

// === impl SseReader ===

impl SseReader {
    pub fn new(response: reqwest::Response) -> Self {
        Self::from_stream(Box::pin(
            response.bytes_stream().map(|chunk| chunk.map_err(|e| classify(&e))),
        ))
    }

    /// The events of an answer body given as a stream of chunks.
    pub fn from_stream(body: ByteStream) -> Self {
        Self { body, buffer: BytesMut::new(), last_id: None, retry: None }
    }

    /// The id of the last event that carried one (`Last-Event-ID` on reconnect).
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_id.as_deref()
    }

    /// The reconnection delay the server last asked for.
    pub fn retry(&self) -> Option<Duration> {
        self.retry
    }

    /// Keeps the `id` and `retry` fields of `event`.
    fn remember(&mut self, event: &[u8]) {
        for line in event.split(|b| *b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if let Some(id) = field(line, b"id") {
                // An id with NUL is ignored, as the SSE standard says.
                if !id.contains(&0) {
                    self.last_id = Some(String::from_utf8_lossy(id).into_owned());
                }
            } else if let Some(retry) = field(line, b"retry")
                && let Ok(ms) = std::str::from_utf8(retry).unwrap_or_default().parse::<u64>()
            {
                self.retry = Some(Duration::from_millis(ms));
            }
        }
    }

    /// The next event's data; `None` when the stream ended.
    pub async fn next(&mut self) -> Option<Result<Bytes, UpstreamError>> {
        loop {
            if let Some(end) = event_end(&self.buffer) {
                let event = self.buffer.split_to(end.0).freeze();
                let _ = self.buffer.split_to(end.1 - end.0);
                self.remember(&event);
                if let Some(data) = data_of(&event) {
                    return Some(Ok(data));
                }
                continue;
            }
            if self.buffer.len() > MAX_EVENT {
                return Some(Err(UpstreamError::MidCall("an event larger than 16 MiB".into())));
            }
            match self.body.next().await? {
                Ok(chunk) => self.buffer.extend_from_slice(&chunk),
                Err(error) => return Some(Err(error)),
            }
        }
    }
}

/// The value of field `name` on `line`, if it is that field.
fn field<'a>(line: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let rest = line.strip_prefix(name)?;
    if rest.is_empty() {
        return Some(rest);
    }
    let value = rest.strip_prefix(b":")?;
    Some(value.strip_prefix(b" ").unwrap_or(value))
}

/// Where the first event ends: (end of its text, end of the blank line).
fn event_end(buffer: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < buffer.len() {
        if buffer[i] == b'\n' {
            let next = i + 1;
            if buffer.get(next) == Some(&b'\n') {
                return Some((i, next + 1));
            }
            if buffer.get(next) == Some(&b'\r') && buffer.get(next + 1) == Some(&b'\n') {
                return Some((i, next + 2));
            }
        }
        i += 1;
    }
    None
}

/// The `data` lines of one event, joined by newlines.
fn data_of(event: &[u8]) -> Option<Bytes> {
    let mut data: Vec<u8> = Vec::new();
    let mut any = false;
    for line in event.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(value) = line.strip_prefix(b"data:") else { continue };
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if any {
            data.push(b'\n');
        }
        data.extend_from_slice(value);
        any = true;
    }
    (any && !data.iter().all(u8::is_ascii_whitespace)).then(|| Bytes::from(data))
}

/// One SSE event carrying `data` (a JSON message, on one line).
pub(crate) fn event(data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(b"event: message\ndata: ");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_split_on_blank_lines_and_priming_events_skipped() {
        let text = b"id: 0\nretry: 3000\ndata:\n\nevent: message\r\ndata: {\"a\":1}\r\n\r\nrest";
        let (end, next) = event_end(text).unwrap();
        assert_eq!(data_of(&text[..end]), None);
        let second = &text[next..];
        let (end, _) = event_end(second).unwrap();
        assert_eq!(data_of(&second[..end]).unwrap(), Bytes::from_static(b"{\"a\":1}"));
    }

    #[test]
    fn fields_of_an_event_are_read_by_name() {
        assert_eq!(field(b"id: 7/3", b"id"), Some(&b"7/3"[..]));
        assert_eq!(field(b"retry:3000", b"retry"), Some(&b"3000"[..]));
        assert_eq!(field(b"identity: x", b"id"), None, "another field");
        assert_eq!(field(b"data: x", b"id"), None);
    }
}
