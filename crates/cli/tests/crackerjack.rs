//! crackerjack's `show_hooks` as a real shell process in real git checkouts: the hooks
//! directory is the one git uses (a linked worktree shares the main repository's,
//! `core.hooksPath` wins), and `.pre-commit-config.yaml` is read as YAML.

use std::path::Path;
use std::process::Command;

use crate::common::{bin, free_port, stdout};

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.email=t@example.invalid", "-c", "user.name=t"])
        .args(args)
        .current_dir(dir)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

/// `show_hooks` run in `dir`, with no server (tracking buffers locally).
fn show_hooks(home: &Path, dir: &Path) -> String {
    let o = bin()
        .env("SESSION_BUDDY_HOME", home)
        .env(
            "SESSION_BUDDY_URL",
            format!("http://127.0.0.1:{}", free_port()),
        )
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .current_dir(dir)
        .args(["shell", "crackerjack", "-c", "show_hooks"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    stdout(&o)
}

#[test]
fn show_hooks_follows_git_in_worktrees_and_core_hooks_path() {
    let base = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let main = base.path().join("main");
    std::fs::create_dir_all(&main).unwrap();
    git(&main, &["init", "-q"]);
    std::fs::write(
        main.join(".pre-commit-config.yaml"),
        "repos:\n  - repo: https://github.com/psf/black\n    rev: \"24.1.0\"\n    hooks: [{id: black}, {id: black-jupyter}]\n",
    )
    .unwrap();
    git(&main, &["add", ".pre-commit-config.yaml"]);
    git(&main, &["commit", "-q", "-m", "first"]);
    let main = main.canonicalize().unwrap();
    std::fs::write(
        main.join(".git/hooks/pre-commit"),
        "#!/bin/sh\n# pre-commit\n",
    )
    .unwrap();

    let linked = base.path().join("linked");
    git(&main, &["worktree", "add", "-q", linked.to_str().unwrap()]);
    let linked = linked.canonicalize().unwrap();
    let text = show_hooks(home.path(), &linked);
    assert!(
        text.contains(&format!(
            "Git hooks in {}:",
            main.join(".git/hooks").display()
        )),
        "a linked worktree uses the main repository's hooks: {text}"
    );
    assert!(text.contains("pre-commit"), "{text}");
    assert!(text.contains(": 2 hook(s)"), "{text}");
    assert!(text.contains("black, black-jupyter"), "{text}");

    std::fs::create_dir_all(main.join("tools/hooks")).unwrap();
    git(&main, &["config", "core.hooksPath", "tools/hooks"]);
    let text = show_hooks(home.path(), &main);
    assert!(
        text.contains(&format!(
            "Git hooks: none installed in {}",
            main.join("tools/hooks").display()
        )),
        "core.hooksPath wins: {text}"
    );
    assert!(
        text.contains("not installed as a git hook"),
        "pre-commit is no longer the hook git runs: {text}"
    );
}
