//! Gateway access flags (shared by `switchboard gateway` and `up`): which
//! ways to authenticate, the policy file, rate limits, the identity given
//! to agents, token passthrough and the call audit. All off by default.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use switchboard_gateway::access::{AccessConfig, IdentityMode, JwksSource, OAuthConfig};

use super::{ConfigError, parse_duration};

/// Access flags of the gateway.
#[derive(Debug, Clone, Args, Default)]
pub struct AccessOptions {
    /// Accept OAuth 2.1 access tokens (JWTs) from this issuer (`iss`).
    #[arg(long, env = "SWITCHBOARD_OAUTH_ISSUER")]
    pub oauth_issuer: Option<String>,
    /// The issuer's keys: a JWKS URL, or a file path [default: <issuer>/.well-known/jwks.json].
    #[arg(long, env = "SWITCHBOARD_OAUTH_JWKS")]
    pub oauth_jwks: Option<String>,
    /// This gateway's resource URL, the audience tokens must name
    /// [default: http://<gateway-addr>/mcp].
    #[arg(long, env = "SWITCHBOARD_OAUTH_RESOURCE")]
    pub oauth_resource: Option<String>,
    /// Authorization servers named in the protected-resource metadata,
    /// comma-separated [default: the issuer].
    #[arg(long, env = "SWITCHBOARD_OAUTH_AUTHORIZATION_SERVERS", value_delimiter = ',')]
    pub oauth_authorization_servers: Vec<String>,
    /// Clock skew accepted on a token's exp and nbf [default: 30s].
    #[arg(long, env = "SWITCHBOARD_OAUTH_LEEWAY")]
    pub oauth_leeway: Option<String>,
    /// Least time between two JWKS fetches caused by unknown key ids [default: 10s].
    #[arg(long, env = "SWITCHBOARD_OAUTH_JWKS_MIN_REFRESH")]
    pub oauth_jwks_min_refresh: Option<String>,
    /// Accept API keys (`switchboard key create`), checked at the registry.
    #[arg(long, env = "SWITCHBOARD_API_KEYS")]
    pub api_keys: bool,
    /// Accept verified client certificates as callers (`cert:<name>`);
    /// needs a TLS listener with a client CA.
    #[arg(long, env = "SWITCHBOARD_MTLS_CLIENTS")]
    pub mtls_clients: bool,
    /// Access policy file (TOML), reloaded when it changes.
    #[arg(long, env = "SWITCHBOARD_POLICY")]
    pub policy: Option<PathBuf>,
    /// Rate limit per principal: `N/s`, `N/m` or `N/h`, optionally `:BURST`.
    #[arg(long, env = "SWITCHBOARD_RATE_LIMIT_PRINCIPAL")]
    pub rate_limit_principal: Option<String>,
    /// Rate limit per tool (all callers together).
    #[arg(long, env = "SWITCHBOARD_RATE_LIMIT_TOOL")]
    pub rate_limit_tool: Option<String>,
    /// Rate limit for the whole gateway.
    #[arg(long, env = "SWITCHBOARD_RATE_LIMIT_GLOBAL")]
    pub rate_limit_global: Option<String>,
    /// What agents learn about the caller: off, signed (HS256 with
    /// --caller-identity-key-file) or tls (unsigned, only to https agents).
    #[arg(long, env = "SWITCHBOARD_CALLER_IDENTITY", default_value = "off")]
    pub caller_identity: String,
    /// The HMAC key (≥ 32 bytes) of `--caller-identity signed`.
    #[arg(long, env = "SWITCHBOARD_CALLER_IDENTITY_KEY_FILE")]
    pub caller_identity_key_file: Option<PathBuf>,
    /// Tools (patterns, comma-separated) whose calls carry the caller's
    /// Authorization header upstream; none by default.
    #[arg(long, env = "SWITCHBOARD_TOKEN_PASSTHROUGH", value_delimiter = ',')]
    pub token_passthrough: Vec<String>,
    /// Call audit sink: off, stdout or a file path [default: off]. Its own
    /// flag, apart from the registry's `--audit-log`, so `up` takes both.
    #[arg(long, env = "SWITCHBOARD_GATEWAY_AUDIT_LOG")]
    pub call_audit_log: Option<String>,
    /// Also record each call's arguments in the audit (never by default).
    #[arg(long, env = "SWITCHBOARD_AUDIT_ARGUMENTS")]
    pub audit_arguments: bool,
}

// === impl AccessOptions ===

impl AccessOptions {
    /// The gateway's access settings; `gateway_addr` names the default resource URL.
    /// `registry_token` is the gateway's own registry token (`--token`),
    /// which checks API keys at the registry.
    pub fn resolve(
        self,
        gateway_addr: SocketAddr,
        registry_token: Option<String>,
    ) -> Result<AccessConfig, ConfigError> {
        let bad = |setting: &str, error: String| ConfigError(format!("{setting}: {error}"));
        let mut access = AccessConfig::default();
        if let Some(issuer) = self.oauth_issuer {
            let resource =
                self.oauth_resource.unwrap_or_else(|| format!("http://{gateway_addr}/mcp"));
            let jwks = match self.oauth_jwks {
                Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                    JwksSource::Url(url)
                }
                Some(path) => JwksSource::File(PathBuf::from(path)),
                None => JwksSource::Url(format!(
                    "{}/.well-known/jwks.json",
                    issuer.trim_end_matches('/')
                )),
            };
            let mut oauth = OAuthConfig::new(&resource, &issuer, jwks);
            if !self.oauth_authorization_servers.is_empty() {
                oauth.authorization_servers = self.oauth_authorization_servers;
            }
            if let Some(text) = self.oauth_leeway {
                oauth.leeway = parse_duration("oauth_leeway", &text)?;
            }
            if let Some(text) = self.oauth_jwks_min_refresh {
                oauth.jwks_min_refresh = parse_duration("oauth_jwks_min_refresh", &text)?;
            }
            access.oauth = Some(oauth);
        } else if self.oauth_jwks.is_some() || self.oauth_resource.is_some() {
            return Err(ConfigError("oauth_jwks, oauth_resource: need --oauth-issuer".into()));
        }
        access.api_keys = self.api_keys;
        access.registry_token = registry_token;
        access.mtls = self.mtls_clients;
        access.policy = self.policy;
        let rate = |setting: &str, text: Option<String>| {
            text.map(|t| t.parse().map_err(|e| bad(setting, e))).transpose()
        };
        access.limits.per_principal = rate("rate_limit_principal", self.rate_limit_principal)?;
        access.limits.per_tool = rate("rate_limit_tool", self.rate_limit_tool)?;
        access.limits.global = rate("rate_limit_global", self.rate_limit_global)?;
        access.identity = match self.caller_identity.as_str() {
            "" | "off" => IdentityMode::Off,
            "tls" => IdentityMode::TlsOnly,
            "signed" => {
                let path = self.caller_identity_key_file.ok_or_else(|| {
                    ConfigError("caller_identity signed: needs --caller-identity-key-file".into())
                })?;
                let key = std::fs::read(&path).map_err(|e| {
                    bad("caller_identity_key_file", format!("{}: {e}", path.display()))
                })?;
                let key = String::from_utf8_lossy(&key).trim().as_bytes().to_vec();
                IdentityMode::Signed { key }
            }
            other => {
                return Err(ConfigError(format!(
                    "caller_identity: {other:?} is not one of off, signed, tls"
                )));
            }
        };
        access.token_passthrough = self.token_passthrough;
        if let Some(sink) = self.call_audit_log {
            access.audit = sink.parse().map_err(|e| bad("call_audit_log", e))?;
        }
        access.audit_arguments = self.audit_arguments;
        access.validate().map_err(ConfigError)?;
        Ok(access)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> SocketAddr {
        "127.0.0.1:7700".parse().unwrap()
    }

    #[test]
    fn off_by_default() {
        let access = AccessOptions::default();
        assert!(!access.resolve(addr(), None).unwrap().any_enabled());
    }

    #[test]
    fn oauth_defaults_to_this_gateway_and_the_issuer_jwks() {
        let options = AccessOptions {
            oauth_issuer: Some("https://auth.example.com".into()),
            rate_limit_principal: Some("10/s:20".into()),
            ..AccessOptions::default()
        };
        let access = options.resolve(addr(), None).unwrap();
        let oauth = access.oauth.unwrap();
        assert_eq!(oauth.resource, "http://127.0.0.1:7700/mcp");
        assert_eq!(
            oauth.jwks,
            JwksSource::Url("https://auth.example.com/.well-known/jwks.json".into())
        );
        assert_eq!(access.limits.per_principal.unwrap().burst, 20);
    }

    #[test]
    fn mistakes_name_the_setting() {
        let none = AccessOptions::default;
        let cases = [
            (AccessOptions { rate_limit_tool: Some("fast".into()), ..none() }, "rate_limit_tool"),
            (AccessOptions { caller_identity: "signed".into(), ..none() }, "key-file"),
            (AccessOptions { caller_identity: "loud".into(), ..none() }, "caller_identity"),
            (AccessOptions { policy: Some("p.toml".into()), ..none() }, "policy"),
            (AccessOptions { call_audit_log: Some("file:".into()), ..none() }, "call_audit_log"),
            (AccessOptions { oauth_jwks: Some("k.json".into()), ..none() }, "oauth-issuer"),
        ];
        for (options, setting) in cases {
            let error = options.resolve(addr(), None).unwrap_err().0;
            assert!(error.contains(setting), "{setting}: {error}");
        }
    }
}
