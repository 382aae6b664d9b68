#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use super::*;

fn program(path: &str, args: &[&str]) -> Program {
    Program { path: path.into(), args: args.iter().map(|a| (*a).to_owned()).collect() }
}

fn agent(dir: &std::path::Path, configure: impl FnOnce(&mut CommandAgentConfig)) -> CommandAgent {
    let programs = vec![
        program("/bin/echo", &["[a-z]+"]),
        program("/bin/sleep", &["[0-9]+"]),
        program("/usr/bin/head", &["-c", "[0-9]+", "/dev/zero"]),
        program("/usr/bin/env", &[]),
        program("/bin/pwd", &[]),
    ];
    let mut config = CommandAgentConfig::new(programs, dir);
    configure(&mut config);
    CommandAgent::new(config).unwrap()
}

fn run_args(program: &str, args: &[&str], cwd: Option<&str>) -> RunArgs {
    RunArgs {
        program: program.to_owned(),
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        cwd: cwd.map(str::to_owned),
    }
}

#[tokio::test]
async fn a_run_gets_its_output_exit_code_and_confined_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let commands = agent(dir.path(), |_| {});
    let output = commands.run(run_args("echo", &["hello", "mesh"], None)).await.unwrap();
    assert_eq!(
        (output.stdout.as_str(), output.exit_code, output.truncated),
        ("hello mesh\n", Some(0), false)
    );

    let output = commands.run(run_args("/bin/pwd", &[], Some("sub"))).await.unwrap();
    let real = std::fs::canonicalize(dir.path().join("sub")).unwrap();
    assert_eq!(output.stdout.trim_end(), real.display().to_string());

    for (cwd, expected) in [
        ("../", "\"..\" components are not allowed"),
        ("/tmp", "absolute paths"),
        ("gone", "not found"),
    ] {
        let error =
            commands.run(run_args("/bin/pwd", &[], Some(cwd))).await.unwrap_err().to_string();
        assert!(error.contains(expected), "cwd {cwd:?}: {error}");
    }
}

#[tokio::test]
async fn programs_see_only_the_allowed_environment() {
    let dir = tempfile::tempdir().unwrap();
    let bare = agent(dir.path(), |_| {});
    let output = bare.run(run_args("env", &[], None)).await.unwrap();
    assert_eq!(output.stdout, "", "a cleared environment");
    let with_path =
        agent(dir.path(), |c| c.env_allow = vec!["PATH".into(), "SB_SURELY_UNSET".into()]);
    let output = with_path.run(run_args("env", &[], None)).await.unwrap();
    let path = std::env::var("PATH").unwrap();
    assert_eq!(output.stdout, format!("PATH={path}\n"));
}

#[tokio::test]
async fn output_past_the_cap_is_cut_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let commands = agent(dir.path(), |c| c.max_output_bytes = 1000);
    let output =
        commands.run(run_args("head", &["-c", "200000", "/dev/zero"], None)).await.unwrap();
    assert_eq!(output.stdout.len(), 1000);
    assert_eq!(output.stdout_bytes, 200_000);
    assert!(output.truncated);
    assert_eq!(output.exit_code, Some(0), "the program ran to its end");
}

#[tokio::test]
async fn a_run_past_its_timeout_is_killed_with_its_children() {
    let dir = tempfile::tempdir().unwrap();
    // A program that forks a child and tells its pid, then waits.
    let script = dir.path().join("forks.sh");
    std::fs::write(&script, "#!/bin/sh\n/bin/sleep 60 &\necho $!\nwait\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut config =
        CommandAgentConfig::new(vec![program(script.to_str().unwrap(), &[])], dir.path());
    config.timeout = Duration::from_millis(500);
    let commands = CommandAgent::new(config).unwrap();

    let output = commands.run(run_args("forks.sh", &[], None)).await.unwrap();
    assert!(output.timed_out);
    assert_eq!(output.exit_code, None);
    assert_eq!(output.signal, Some(9));
    let child: i32 = output.stdout.trim().parse().expect("the child's pid, output kept");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
        // Gone, or a zombie waiting for a reaper: either way, not running.
        if stat.is_empty() || stat.split_whitespace().nth(2) == Some("Z") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the forked child still runs: {stat}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn flags_become_a_checked_config() {
    use clap::Parser as _;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("allow.toml");
    std::fs::write(&file, "[[program]]\npath = \"/bin/echo\"\nargs = [\"[a-z]+\"]\n").unwrap();
    let flags = CommandAgentFlags::parse_from([
        "command-agent",
        "--allow-file",
        file.to_str().unwrap(),
        "--allow",
        "/bin/echo=-n",
        "--allow",
        "/bin/pwd",
        "--timeout",
        "1.5",
        "--env-allow",
        "PATH,LANG",
    ]);
    let config = flags.config().unwrap();
    assert_eq!(config.timeout, Duration::from_millis(1500));
    assert_eq!(config.env_allow, ["PATH", "LANG"]);
    let policy = Policy::new(&config.programs, config.max_args).unwrap();
    let patterns: Vec<_> =
        policy.programs().iter().map(|p| (p.path.clone(), p.patterns.clone())).collect();
    assert_eq!(
        patterns,
        [
            ("/bin/echo".into(), vec!["[a-z]+".to_owned(), "-n".to_owned()]),
            ("/bin/pwd".into(), vec![])
        ]
    );

    let zero = CommandAgentFlags::parse_from(["command-agent", "--timeout", "0"]);
    assert!(zero.config().unwrap_err().to_string().contains("--timeout"));
    std::fs::write(&file, "[[program]]\npath = \"/bin/echo\"\nargz = []\n").unwrap();
    let typo =
        CommandAgentFlags::parse_from(["command-agent", "--allow-file", file.to_str().unwrap()]);
    assert!(typo.config().unwrap_err().to_string().contains("allow-list file"));
}

#[tokio::test]
async fn runs_beyond_the_concurrency_limit_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let commands = agent(dir.path(), |c| c.max_concurrent = 1);
    let busy = commands.clone();
    let first = tokio::spawn(async move { busy.run(run_args("sleep", &["2"], None)).await });
    // The first run holds the only permit while its program sleeps.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while commands.shared.runs.available_permits() > 0 {
        assert!(tokio::time::Instant::now() < deadline, "the first run never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let error = commands.run(run_args("echo", &["hi"], None)).await.unwrap_err().to_string();
    assert_eq!(
        error,
        "program \"echo\": refused: busy, the limit of 1 runs at once is reached (--max-concurrent)"
    );
    first.abort();
}
