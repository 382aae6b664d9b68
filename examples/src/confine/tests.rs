#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::symlink;

use super::*;

/// A base directory with a file, a subdirectory, and links: one inside,
/// one out, one dangling, and a loop. The tempdir's parent holds the
/// outside file.
fn fixture() -> (tempfile::TempDir, Confinement) {
    let root = tempfile::tempdir().unwrap();
    let base = root.path().join("base");
    std::fs::create_dir_all(base.join("sub")).unwrap();
    std::fs::write(base.join("sub/note.txt"), "inside").unwrap();
    std::fs::write(root.path().join("secret.txt"), "outside").unwrap();
    symlink("sub/note.txt", base.join("inner-link")).unwrap();
    symlink(root.path().join("secret.txt"), base.join("out-link")).unwrap();
    symlink(root.path(), base.join("out-dir")).unwrap();
    symlink("missing-target", base.join("dangling")).unwrap();
    symlink("loop-b", base.join("loop-a")).unwrap();
    symlink("loop-a", base.join("loop-b")).unwrap();
    let confinement = Confinement::new(&base).unwrap();
    (root, confinement)
}

#[test]
fn textual_rules_refuse_before_the_file_system_is_touched() {
    let long_name = "n".repeat(MAX_NAME_BYTES + 1);
    let long_path = "d/".repeat(MAX_PATH_BYTES / 2 + 1);
    let cases: &[(&str, &str)] = &[
        ("a\0b", "contains a NUL byte"),
        (&long_name, "over the 255-byte name limit"),
        (&long_path, "over the 4096-byte path limit"),
        ("/etc/passwd", "absolute paths are not allowed"),
        ("../secret.txt", "\"..\" components are not allowed"),
        ("sub/../../secret.txt", "\"..\" components are not allowed"),
        ("sub/./..", "\"..\" components are not allowed"),
    ];
    for (path, expected) in cases {
        let error = components(path).expect_err(path).to_string();
        assert!(error.contains(expected), "{path:?}: {error}");
    }
    assert_eq!(components("./sub//note.txt").unwrap(), ["sub", "note.txt"]);
    assert!(components("").unwrap().is_empty());
}

#[test]
fn links_out_loops_and_dangling_links_are_refused_and_links_inside_resolve() {
    let (_root, confinement) = fixture();
    let base = confinement.base().to_owned();
    let refused: &[(&str, &str)] = &[
        ("out-link", "resolves outside the base directory"),
        ("out-dir/secret.txt", "resolves outside the base directory"),
        ("out-dir/new.txt", "resolves outside the base directory"),
        ("loop-a", "a link loop"),
        ("loop-a/x.txt", "a link loop"),
        ("dangling", "is a dangling symbolic link"),
    ];
    for (path, expected) in refused {
        let error = confinement.resolve(path).expect_err(path).to_string();
        assert!(error.contains(expected), "{path:?}: {error}");
        assert!(error.contains(&format!("{path:?}")), "names the path: {error}");
    }
    let allowed: &[(&str, PathBuf)] = &[
        ("", base.clone()),
        (".", base.clone()),
        ("sub/note.txt", base.join("sub/note.txt")),
        ("inner-link", base.join("sub/note.txt")),
        ("sub/new/deeper.txt", base.join("sub/new/deeper.txt")),
    ];
    for (path, expected) in allowed {
        assert_eq!(&confinement.resolve(path).unwrap(), expected, "{path:?}");
    }
    assert_eq!(confinement.relative(&base.join("sub/note.txt")), "sub/note.txt");
    assert_eq!(confinement.relative(&base), ".");
}

#[test]
fn a_base_that_is_not_a_directory_is_a_config_error() {
    let (root, _confinement) = fixture();
    let error = Confinement::new(&root.path().join("secret.txt")).unwrap_err().to_string();
    assert!(error.contains("not a directory"), "{error}");
    let error = Confinement::new(&root.path().join("nope")).unwrap_err().to_string();
    assert!(error.starts_with("base directory"), "{error}");
}

#[test]
fn a_handle_is_verified_where_it_really_is() {
    let (root, confinement) = fixture();
    let inside = std::fs::File::open(confinement.base().join("sub/note.txt")).unwrap();
    confinement.verify_handle("sub/note.txt", &inside).unwrap();
    // What a directory swapped for a link between check and open yields.
    let outside = std::fs::File::open(root.path().join("secret.txt")).unwrap();
    let error = confinement.verify_handle("sub/note.txt", &outside).unwrap_err();
    assert_eq!(
        error.to_string(),
        "path \"sub/note.txt\": refused: resolves outside the base directory"
    );
}
