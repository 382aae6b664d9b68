#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn agent_in(dir: &std::path::Path, configure: impl FnOnce(&mut FileAgentConfig)) -> FileAgent {
    let mut config = FileAgentConfig::new(dir);
    configure(&mut config);
    FileAgent::new(config).unwrap()
}

#[test]
fn reads_and_writes_are_refused_by_the_limit_they_break() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("big.txt"), "x".repeat(11)).unwrap();
    std::fs::write(dir.path().join("ok.txt"), "fits").unwrap();
    std::fs::write(dir.path().join("tool.exe"), "mz").unwrap();
    std::fs::write(dir.path().join("bin.txt"), [0xff, 0xfe]).unwrap();
    let files = agent_in(dir.path(), |c| {
        c.max_file_bytes = 10;
        c.allow_ext = vec!["TXT".into(), ".md".into()];
    });
    let shared = &files.shared;
    let read = |path: &str| ops::read(&shared.config, &shared.confinement, path);
    let write =
        |path: &str, text: &str| ops::write(&shared.config, &shared.confinement, path, text);

    let cases: Vec<(&str, Result<FileContent, ToolError>, &str)> = vec![
        (
            "read over the limit",
            read("big.txt"),
            "larger than the 10-byte limit (--max-file-bytes)",
        ),
        (
            "read a forbidden extension",
            read("tool.exe"),
            "extension \"exe\" is not allowed (--allow-ext: txt,md)",
        ),
        ("read no extension", read("sub"), "extension \"\" is not allowed"),
        ("read binary", read("bin.txt"), "not UTF-8 text"),
        ("read missing", read("gone.txt"), "\"gone.txt\": not found"),
    ];
    for (what, result, expected) in cases {
        let error = result.map(|c| c.content).expect_err(what).to_string();
        assert!(error.contains(expected), "{what}: {error}");
    }
    let writes: Vec<(&str, Result<Written, ToolError>, &str)> = vec![
        ("write over the limit", write("new.txt", "01234567890"), "larger than the 10-byte limit"),
        ("write a forbidden extension", write("new.sh", "echo"), "extension \"sh\" is not allowed"),
        (
            "write without a parent",
            write("no/such/dir.txt", "x"),
            "its parent directory does not exist",
        ),
        ("write the base", write(".", "x"), "is the base directory"),
    ];
    for (what, result, expected) in writes {
        let error = result.map(|w| w.bytes).expect_err(what).to_string();
        assert!(error.contains(expected), "{what}: {error}");
    }
    assert_eq!(read("ok.txt").unwrap().content, "fits");
    assert_eq!(read("OK.txt".to_lowercase().as_str()).unwrap().bytes, 4);
}

#[test]
fn read_only_mode_refuses_every_write_and_still_reads() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "old").unwrap();
    let files = agent_in(dir.path(), |c| c.read_only = true);
    let shared = &files.shared;
    for path in ["a.txt", "new.txt", "../escape.txt"] {
        let error = ops::write(&shared.config, &shared.confinement, path, "new").unwrap_err();
        assert!(
            error.to_string().ends_with("refused: the agent is read-only (--read-only)"),
            "{error}"
        );
    }
    assert_eq!(std::fs::read_to_string(dir.path().join("a.txt")).unwrap(), "old");
    assert_eq!(ops::read(&shared.config, &shared.confinement, "a.txt").unwrap().content, "old");
}

#[test]
fn a_write_replaces_atomically_keeps_permissions_and_leaves_no_temporary_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let target = dir.path().join("sub/a.txt");
    std::fs::write(&target, "old").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    let files = agent_in(dir.path(), |_| {});
    let shared = &files.shared;

    let written = ops::write(&shared.config, &shared.confinement, "sub/a.txt", "new text").unwrap();
    assert_eq!((written.path.as_str(), written.bytes, written.created), ("sub/a.txt", 8, false));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "new text");
    assert_eq!(std::fs::metadata(&target).unwrap().permissions().mode() & 0o777, 0o600);
    let created = ops::write(&shared.config, &shared.confinement, "sub/b.txt", "").unwrap();
    assert!(created.created);

    let listing = ops::list(&shared.confinement, "sub").unwrap();
    let names: Vec<_> = listing.entries.iter().map(|e| (e.name.as_str(), e.kind, e.size)).collect();
    assert_eq!(names, [("a.txt", "file", 8), ("b.txt", "file", 0)], "no temporary file left");
    let error = ops::write(&shared.config, &shared.confinement, "sub", "x").unwrap_err();
    assert!(error.to_string().contains("is a directory"), "{error}");
}

#[test]
fn listing_shows_links_without_following_them_and_info_tells_what_a_read_would_do() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "abc").unwrap();
    std::os::unix::fs::symlink("/etc", dir.path().join("etc-link")).unwrap();
    std::os::unix::fs::symlink("a.txt", dir.path().join("alias")).unwrap();
    let files = agent_in(dir.path(), |c| c.max_file_bytes = 2);
    let shared = &files.shared;

    let listing = ops::list(&shared.confinement, ".").unwrap();
    let kinds: Vec<_> = listing.entries.iter().map(|e| (e.name.as_str(), e.kind)).collect();
    assert_eq!(kinds, [("a.txt", "file"), ("alias", "symlink"), ("etc-link", "symlink")]);
    assert!(!listing.truncated);

    let info = ops::info(&shared.config, &shared.confinement, "alias").unwrap();
    assert_eq!((info.path.as_str(), info.kind, info.size), ("a.txt", "file", 3));
    assert!(!info.readable, "over the 2-byte limit");
    assert!(info.modified.is_some());
    let error = ops::info(&shared.config, &shared.confinement, "etc-link").unwrap_err();
    assert!(error.to_string().contains("resolves outside the base directory"), "{error}");
    let error = ops::list(&shared.confinement, "a.txt").unwrap_err();
    assert!(error.to_string().contains("is not a directory"), "{error}");
}

#[test]
fn bad_settings_are_refused_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    type Change = fn(&mut FileAgentConfig);
    let cases: &[(Change, &str)] = &[
        (|c| c.max_file_bytes = 0, "--max-file-bytes"),
        (|c| c.allow_ext = vec!["tar.gz".into()], "--allow-ext"),
        (|c| c.allow_ext = vec![String::new()], "--allow-ext"),
        (|c| c.base_dir.push("missing"), "base directory"),
    ];
    for (configure, expected) in cases {
        let mut config = FileAgentConfig::new(dir.path());
        configure(&mut config);
        let error = FileAgent::new(config).err().expect(expected).to_string();
        assert!(error.contains(expected), "{error}");
    }
}

#[test]
fn a_link_swapped_in_after_the_check_is_not_followed() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("secret.txt"), "outside").unwrap();
    let checked = root.path().join("note.txt");
    // What a swap between resolve and open leaves behind.
    std::os::unix::fs::symlink(root.path().join("secret.txt"), &checked).unwrap();
    let error = ops::open_no_follow("note.txt", &checked).unwrap_err().to_string();
    assert_eq!(error, "path \"note.txt\": refused: became a symbolic link after it was checked");
}
