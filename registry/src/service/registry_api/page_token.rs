//! ListAgents page tokens: where the next page starts, bound to the query.
//!
//! A token is `base64url(version ‖ check ‖ last id)`, where `check` is the
//! first 16 bytes of SHA-256 over the store epoch, the query's filters
//! (capability, tag, status, name — not `page_size`, which a caller may change
//! between pages) and the last id. So a token from another query, another
//! store, or one edited or cut short is refused with `INVALID_ARGUMENT`
//! naming `page_token`, instead of silently listing from some other place.
//! The check is not a secret signature: nothing is protected by a token (any
//! caller may list every agent); it catches mistakes. Keyed by the store
//! epoch rather than a per-process key, a token survives a registry restart.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};
use switchboard_proto::v1::ListAgentsRequest;

use crate::error::RegistryError;

/// Format of the tokens made here.
const VERSION: u8 = 1;
/// Bytes of the check.
const CHECK_LEN: usize = 16;

/// The token for the page after `last_id`.
pub fn encode(epoch: &str, request: &ListAgentsRequest, last_id: &str) -> String {
    let mut bytes = Vec::with_capacity(1 + CHECK_LEN + last_id.len());
    bytes.push(VERSION);
    bytes.extend_from_slice(&check(epoch, request, last_id));
    bytes.extend_from_slice(last_id.as_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The last id of the previous page, `None` for the first page.
pub fn decode(epoch: &str, request: &ListAgentsRequest) -> Result<Option<String>, RegistryError> {
    let token = &request.page_token;
    if token.is_empty() {
        return Ok(None);
    }
    let foreign = || {
        RegistryError::invalid(
            "page_token",
            "not a token from a ListAgents answer: pass next_page_token back unchanged",
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| foreign())?;
    let Some((&VERSION, rest)) = bytes.split_first() else { return Err(foreign()) };
    if rest.len() <= CHECK_LEN {
        return Err(foreign());
    }
    let (sealed, id) = rest.split_at(CHECK_LEN);
    let id = std::str::from_utf8(id).map_err(|_| foreign())?;
    if sealed != check(epoch, request, id) {
        return Err(RegistryError::invalid(
            "page_token",
            "does not match this query: a token is valid unchanged, with the capability, tag, \
             status and name of the request it came from, on the same store; start again \
             without a token",
        ));
    }
    Ok(Some(id.to_owned()))
}

fn check(epoch: &str, request: &ListAgentsRequest, last_id: &str) -> [u8; CHECK_LEN] {
    let mut hash = Sha256::new();
    hash.update(b"switchboard.v1.ListAgents page token");
    // Length-prefixed, so no two different queries hash the same bytes.
    for part in [epoch, &request.capability, &request.tag, &request.name, last_id] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    hash.update(request.status.to_be_bytes());
    let digest = hash.finalize();
    let mut check = [0; CHECK_LEN];
    check.copy_from_slice(&digest[..CHECK_LEN]);
    check
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(capability: &str) -> ListAgentsRequest {
        ListAgentsRequest { capability: capability.into(), ..ListAgentsRequest::default() }
    }

    fn with_token(mut request: ListAgentsRequest, token: String) -> ListAgentsRequest {
        request.page_token = token;
        request
    }

    #[test]
    fn a_token_leads_back_to_its_place_with_any_page_size() {
        let token = encode("e", &query("date"), "hello-00000001");
        let mut next = with_token(query("date"), token);
        next.page_size = 7;
        assert_eq!(decode("e", &next).unwrap().as_deref(), Some("hello-00000001"));
    }

    #[test]
    fn forged_cut_and_foreign_tokens_are_refused_naming_page_token() {
        let token = encode("e", &query("date"), "hello-00000001");
        let forged = URL_SAFE_NO_PAD.encode([&[VERSION][..], &[0; CHECK_LEN], b"zzz"].concat());
        let cases = [
            ("not base64", with_token(query("date"), "%%%".into())),
            ("plain base64 id", with_token(query("date"), URL_SAFE_NO_PAD.encode("hello-1"))),
            ("forged check", with_token(query("date"), forged)),
            ("truncated", with_token(query("date"), token[..token.len() - 3].into())),
            ("other filter", with_token(query("weather"), token.clone())),
        ];
        for (case, request) in cases {
            let error = decode("e", &request).unwrap_err();
            assert!(error.to_string().starts_with("page_token: "), "{case}: {error}");
        }
        let other_store = with_token(query("date"), token);
        assert!(decode("another epoch", &other_store).is_err());
    }
}
