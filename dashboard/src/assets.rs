//! The page, compiled into the binary so the dashboard works offline.

use axum::Router;
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use http::header;

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/app.css");

/// `/ui`, `/ui/`, `/ui/app.js`, `/ui/app.css`.
pub(crate) fn router() -> Router {
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(|| async { asset("text/html; charset=utf-8", INDEX) }))
        .route("/ui/app.js", get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }))
        .route("/ui/app.css", get(|| async { asset("text/css; charset=utf-8", STYLE) }))
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    // The page is read-only and self-contained: forbid any other origin so a
    // compromised agent label cannot pull in a script.
    let policy = "default-src 'self'; img-src 'self' data:; style-src 'self'";
    ([(header::CONTENT_TYPE, content_type), (header::CONTENT_SECURITY_POLICY, policy)], body)
}
