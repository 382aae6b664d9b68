//! `switchboard token create|list|revoke` and `whoami` against the real
//! binary and a registry started with `--auth`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use switchboard_tests::{TestRegistry, cli, cli_command};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_issues_lists_and_revokes_tokens_from_the_cli() {
    let registry = TestRegistry::builder().auth().child_process(&[]).start().await;
    let addr = registry.addr.to_string();
    let admin_file = registry.dir.path().join("admin.token");
    let admin_file = admin_file.to_str().unwrap();
    let as_admin = |args: &[&str]| {
        let mut all: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        all.extend(["--registry", &addr, "--token-file", admin_file].map(str::to_owned));
        all
    };

    let args = as_admin(&[
        "token",
        "create",
        "--name",
        "weather",
        "--role",
        "agent",
        "--agent",
        "weather",
        "--provides",
        "weather_*",
        "--ttl",
        "30d",
        "--output",
        "json",
    ]);
    let created = cli(&args.iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert_eq!(created.code, 0, "{}", created.stderr);
    let created = created.json();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("sbt_"), "{created}");
    let id = created["token"]["id"].as_str().unwrap().to_owned();
    assert_eq!(created["token"]["provides"][0], "weather_*");
    assert!(created["token"]["expires_at"].is_string(), "{created}");

    // The agent token, from the environment.
    let mut whoami = cli_command(&["whoami", "--registry", &addr, "--output", "json"]);
    whoami.env("SWITCHBOARD_TOKEN", &secret);
    let me = whoami.output().await.unwrap();
    assert!(me.status.success(), "{}", String::from_utf8_lossy(&me.stderr));
    let me: serde_json::Value = serde_json::from_slice(&me.stdout).unwrap();
    assert_eq!(me["identity"], "token:weather");
    assert_eq!(me["role"], "agent");

    // The table never shows a secret; it shows the token.
    let args = as_admin(&["token", "list"]);
    let list = cli(&args.iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert!(list.stdout.contains(&id) && list.stdout.contains("weather_*"), "{}", list.stdout);
    assert!(!list.stdout.contains(&secret), "{}", list.stdout);

    let args = as_admin(&["token", "revoke", &id]);
    let revoke = cli(&args.iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert_eq!(revoke.code, 0, "{}", revoke.stderr);
    let refused = cli(&["whoami", "--registry", &addr, "--token", &secret]).await;
    assert_eq!(refused.code, 5, "{refused:?}");
    assert!(refused.stderr.contains("token revoked"), "{}", refused.stderr);

    // No token at all, and a role that may not: both exit 5, saying why.
    let anonymous = cli(&["agents", "--registry", &addr]).await;
    assert_eq!(anonymous.code, 5, "{anonymous:?}");
    assert!(anonymous.stderr.contains("missing credentials"), "{}", anonymous.stderr);
    let args =
        as_admin(&["token", "create", "--name", "dash", "--role", "viewer", "--output", "json"]);
    let viewer = cli(&args.iter().map(String::as_str).collect::<Vec<_>>()).await.json();
    let viewer = viewer["secret"].as_str().unwrap();
    let denied = cli(&["token", "list", "--registry", &addr, "--token", viewer]).await;
    assert_eq!(denied.code, 5, "{denied:?}");
    assert!(denied.stderr.contains("role viewer and may not list tokens"), "{}", denied.stderr);
    let agents = cli(&["agents", "--registry", &addr, "--token", viewer]).await;
    assert_eq!(agents.code, 0, "{}", agents.stderr);
}
