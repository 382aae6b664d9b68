#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn policy() -> Policy {
    let program = |path: &str, args: &[&str]| Program {
        path: path.into(),
        args: args.iter().map(|a| (*a).to_owned()).collect(),
    };
    Policy::new(
        &[
            program("/bin/echo", &["[a-z]+"]),
            program("/bin/echo", &["-n"]),
            program("/usr/bin/date", &[]),
            program("/bin/ls", &["-l|-a", "[A-Za-z0-9_./-]+", ".*"]),
            program("/usr/local/bin/ls", &[]),
        ],
        3,
    )
    .unwrap()
}

#[test]
fn each_rule_refuses_with_its_own_message() {
    let policy = policy();
    let strings = |args: &[&str]| args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
    let cases: &[(&str, &[&str], &str)] = &[
        ("/bin/sh", &["-c", "id"], "program \"/bin/sh\": refused: not on the allow-list"),
        ("sh", &[], "not on the allow-list (allowed: /bin/echo, /usr/bin/date, /bin/ls"),
        ("ls", &[], "not on the allow-list"), // two programs are called ls
        ("/bin/echo", &["Hello"], "argument 0 \"Hello\": refused: matches none"),
        ("echo", &["hi", "-nn"], "argument 1 \"-nn\": refused: matches none"),
        ("echo", &["hi there"], "matches none"), // anchored: the whole argument must match
        ("date", &["+%s"], "argument 0 \"+%s\": refused: matches none"),
        ("/bin/ls", &["a;id"], "contains the shell metacharacter ';'"),
        ("/bin/ls", &["$(id)"], "contains the shell metacharacter '$'"),
        ("/bin/ls", &["`id`"], "contains the shell metacharacter '`'"),
        ("/bin/ls", &["a|b"], "contains the shell metacharacter '|'"),
        ("/bin/ls", &["x\ny"], "contains the shell metacharacter '\\n'"),
        ("/bin/ls", &["nul\0"], "contains the shell metacharacter '\\0'"),
        ("/bin/ls", &["-l", "-a", "x", "y"], "4 arguments, over the limit of 3"),
    ];
    for (program, args, expected) in cases {
        let error = policy.check(program, &strings(args)).expect_err(program).to_string();
        assert!(error.contains(expected), "{program} {args:?}: {error}");
    }
    let allowed: &[(&str, &[&str], &str)] = &[
        ("echo", &["hi", "-n"], "/bin/echo"),
        ("/bin/echo", &[], "/bin/echo"),
        ("date", &[], "/usr/bin/date"),
        ("/bin/ls", &["-l", "src/main.rs", "a b = c"], "/bin/ls"),
        ("/usr/local/bin/ls", &[], "/usr/local/bin/ls"),
    ];
    for (program, args, path) in allowed {
        let found = policy.check(program, &strings(args)).unwrap();
        assert_eq!(found.path, PathBuf::from(path), "{program} {args:?}");
    }
}

#[test]
fn bad_programs_and_patterns_are_config_errors() {
    let relative = Program { path: "echo".into(), args: vec![] };
    let error = Policy::new(&[relative], 8).unwrap_err().to_string();
    assert!(error.contains("give an absolute path"), "{error}");
    let broken = Program { path: "/bin/echo".into(), args: vec!["(".into()] };
    let error = Policy::new(&[broken], 8).unwrap_err().to_string();
    assert!(error.ends_with("argument pattern \"(\": unclosed group"), "{error}");
}
