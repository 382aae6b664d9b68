//! A plaintext client on a TLS port gets an answer it can show, as Go's
//! HTTPS server does, instead of a dropped connection or a TLS alert read
//! as garbage: an HTTP/2 client (gRPC) gets a GOAWAY whose debug data says
//! TLS is required (h2 shows it in its error), an HTTP/1 client a 400.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// The first byte of every TLS connection (a handshake record).
const TLS_HANDSHAKE: u8 = 0x16;
/// What the answer says.
const MESSAGE: &str =
    "this port serves TLS only: connect with TLS (an https:// address, or --tls-ca)";
/// Longest time spent on a plaintext client.
const PATIENCE: Duration = Duration::from_secs(2);

/// Whether `tcp` starts with something other than a TLS handshake; waits
/// for the client's first byte.
pub(crate) async fn is_plaintext(tcp: &TcpStream) -> bool {
    let mut first = [0u8; 1];
    matches!(tcp.peek(&mut first).await, Ok(1) if first[0] != TLS_HANDSHAKE)
}

/// Answers a plaintext client and closes its connection.
pub(crate) async fn refuse(mut tcp: TcpStream) {
    let _ = tokio::time::timeout(PATIENCE, async {
        // Read what the client sent first: closing with unread data would
        // reset the connection and could discard the answer.
        let mut buf = vec![0u8; 4096];
        let read = tcp.read(&mut buf).await.unwrap_or(0);
        let answer =
            if buf[..read].starts_with(b"PRI * HTTP/2.0") { goaway() } else { bad_request() };
        if tcp.write_all(&answer).await.is_ok() {
            let _ = tcp.shutdown().await;
            while matches!(tcp.read(&mut buf).await, Ok(n) if n > 0) {}
        }
    })
    .await;
}

/// An HTTP/2 server preface (empty SETTINGS) and a GOAWAY (no stream
/// processed, PROTOCOL_ERROR) carrying [`MESSAGE`].
fn goaway() -> Vec<u8> {
    let mut frames = vec![0, 0, 0, 0x4, 0, 0, 0, 0, 0];
    let length = u32::try_from(8 + MESSAGE.len()).unwrap_or(8).to_be_bytes();
    frames.extend_from_slice(&length[1..]);
    frames.extend_from_slice(&[0x7, 0, 0, 0, 0, 0]);
    frames.extend_from_slice(&0u32.to_be_bytes());
    frames.extend_from_slice(&1u32.to_be_bytes());
    frames.extend_from_slice(MESSAGE.as_bytes());
    frames
}

fn bad_request() -> Vec<u8> {
    format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{MESSAGE}\n",
        MESSAGE.len() + 1
    )
    .into_bytes()
}
