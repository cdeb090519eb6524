//! The crackerjack shell's tests: detection, configuration, runs, PATH, hooks.

use super::hooks::*;
use super::programs::*;
use super::project::*;
use super::render::*;
use super::run::*;
use super::*;
use session_buddy_shell::Cancel;
use std::time::Duration;

static NEVER: std::sync::LazyLock<Cancel> = std::sync::LazyLock::new(Cancel::never);

/// A run that shows its output nowhere and is never interrupted.
fn quiet(out: &mut Vec<u8>) -> Live<'_> {
    Live {
        out,
        cancel: &NEVER,
    }
}
use std::ffi::OsString;

fn project_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let p = dir.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

fn system_path() -> OsString {
    std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into())
}

#[test]
fn detects_cargo_and_python_projects_upward() {
    let py = project_with(&[("pyproject.toml", ""), ("pkg/sub/x.py", "")]);
    let p = Project::detect(&py.path().join("pkg/sub")).unwrap();
    assert_eq!((p.kind, p.root.as_path()), (ProjectKind::Python, py.path()));
    assert_eq!(p.command(Check::Test, false).unwrap(), "pytest -q");
    assert_eq!(
        p.command(Check::Format, true).unwrap(),
        "ruff format --check ."
    );

    let ws = project_with(&[
        ("Cargo.toml", "[workspace]\nmembers = [\"crates/*\"]\n"),
        ("crates/a/Cargo.toml", "[package]\nname = \"a\"\n"),
        ("crates/a/src/lib.rs", ""),
    ]);
    let p = Project::detect(&ws.path().join("crates/a/src")).unwrap();
    assert_eq!(p.kind, ProjectKind::Cargo);
    assert_eq!(
        p.root,
        ws.path(),
        "a member's checks run at the workspace root"
    );
    assert_eq!(
        p.command(Check::Lint, false).unwrap(),
        "cargo clippy --quiet -- -D warnings"
    );
    assert_eq!(p.command(Check::Format, true).unwrap(), "cargo fmt --check");

    let none = tempfile::tempdir().unwrap();
    assert!(
        Project::detect(none.path())
            .unwrap_err()
            .contains("no Cargo or Python project")
    );
}

#[test]
fn commands_come_from_the_config_file() {
    let dir = project_with(&[
        ("setup.py", ""),
        (
            ".crackerjack.toml",
            "[commands]\ntest = \"true\"\nlint = \"false\"\nscan = \"\"\nformat_code = \"black .\"\n",
        ),
    ]);
    let p = Project::detect(dir.path()).unwrap();
    assert_eq!(
        p.config_file.as_deref(),
        Some(dir.path().join(".crackerjack.toml").as_path())
    );
    assert_eq!(p.command(Check::Test, false).unwrap(), "true");
    assert_eq!(p.command(Check::Scan, false), None);
    assert_eq!(p.command(Check::Format, false).unwrap(), "black .");
    assert_eq!(p.command(Check::Format, true).unwrap(), "black . --check");
    assert_eq!(p.command(Check::Typecheck, false).unwrap(), "mypy .");

    let bad = project_with(&[
        ("setup.cfg", ""),
        (".crackerjack.toml", "[commands]\ntests = \"x\"\n"),
    ]);
    assert!(
        Project::detect(bad.path())
            .unwrap_err()
            .contains("unknown command 'tests'")
    );
    let bad = project_with(&[
        ("setup.cfg", ""),
        (".crackerjack.toml", "[command]\ntest = \"x\"\n"),
    ]);
    assert!(
        Project::detect(bad.path())
            .unwrap_err()
            .contains("unknown key 'command'")
    );
}

#[test]
fn runs_pass_fail_and_skip_missing_tools() {
    let dir = project_with(&[
        ("setup.py", ""),
        (
            ".crackerjack.toml",
            "[commands]\ntest = \"sh -c 'echo out; echo err >&2; exit 0'\"\n\
             lint = \"sh -c 'for i in $(seq 1 30); do echo line$i; done; exit 3'\"\n\
             typecheck = \"no-such-tool-crackerjack-xyz --strict\"\n\
             scan = \"\"\nformat_check = \"false\"\n",
        ),
    ]);
    let p = Project::detect(dir.path()).unwrap();
    let path = system_path();
    let run = |check, check_only| {
        run_check(
            &p,
            check,
            check_only,
            &[],
            Some(&path),
            Duration::from_secs(30),
            &mut quiet(&mut Vec::new()),
        )
        .unwrap()
    };

    let test = run(Check::Test, false);
    assert_eq!(test.outcome, Outcome::Passed);
    assert_eq!(test.output, "out\nerr\n");

    let lint = run(Check::Lint, false);
    assert_eq!(lint.outcome, Outcome::Failed("exit status 3".into()));
    let tail = lint.tail();
    assert_eq!(tail.lines().count(), TAIL_LINES);
    assert!(
        tail.starts_with("  | line11\n") && tail.ends_with("  | line30\n"),
        "{tail}"
    );

    let typecheck = run(Check::Typecheck, false);
    assert_eq!(
        typecheck.outcome,
        Outcome::Skipped("no-such-tool-crackerjack-xyz not on PATH".into())
    );
    assert!(matches!(
        run(Check::Scan, false).outcome,
        Outcome::Skipped(_)
    ));
    assert_eq!(
        run(Check::Format, true).outcome,
        Outcome::Failed("exit status 1".into())
    );

    let mut out = Vec::new();
    let runs = [test, lint, typecheck];
    let err = report_crack(&mut out, &runs).unwrap_err();
    assert_eq!(err.message, "quality checks failed: lint");
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("1 passed, 1 failed, 1 skipped"), "{out}");
    assert!(
        out.contains("skipped (no-such-tool-crackerjack-xyz not on PATH)"),
        "{out}"
    );
    let ok = report_crack(&mut Vec::new(), &runs[..1]);
    assert!(ok.is_ok());
    // Only skipped checks: nothing ran, which is not a pass.
    let mut out = Vec::new();
    let none = report_crack(&mut out, &runs[2..]).unwrap_err();
    assert_eq!(none.message, "nothing ran: the one check was skipped");
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.contains("✗ Nothing ran") && !out.contains("passed\n✓"),
        "{out}"
    );
}

/// Processes whose command line is `words` (zombies have none, so they do not count).
fn running(words: &[&str]) -> Vec<String> {
    let want: Vec<u8> = words.join("\0").into_bytes();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            cmdline
                .starts_with(&want)
                .then(|| e.file_name().to_string_lossy().into_owned())
        })
        .collect()
}

#[test]
fn a_hanging_tool_is_stopped_at_the_timeout_with_all_it_started() {
    let dir = project_with(&[
        ("setup.py", ""),
        // The child keeps the pipe open too; the whole group goes.
        (
            ".crackerjack.toml",
            "[commands]\ntest = \"sh -c 'sleep 3171 & echo started; sleep 3173'\"\n",
        ),
    ]);
    let p = Project::detect(dir.path()).unwrap();
    let path = system_path();
    let mut shown = Vec::new();
    let run = run_check(
        &p,
        Check::Test,
        false,
        &[],
        Some(&path),
        Duration::from_millis(300),
        &mut quiet(&mut shown),
    )
    .unwrap();
    assert_eq!(run.outcome, Outcome::TimedOut);
    let shown = String::from_utf8(shown).unwrap();
    assert!(shown.contains("  | started\n"), "streamed: {shown}");
    for n in ["3171", "3173"] {
        assert_eq!(running(&["sleep", n]), Vec::<String>::new(), "sleep {n}");
    }
}

#[test]
fn stdin_is_null() {
    let dir = project_with(&[
        ("setup.py", ""),
        (
            ".crackerjack.toml",
            "[commands]\ntest = \"sh -c 'cat; echo done'\"\n",
        ),
    ]);
    let p = Project::detect(dir.path()).unwrap();
    let path = system_path();
    let run = run_check(
        &p,
        Check::Test,
        false,
        &[],
        Some(&path),
        Duration::from_secs(10),
        &mut quiet(&mut Vec::new()),
    )
    .unwrap();
    assert_eq!(
        (run.outcome, run.output.as_str()),
        (Outcome::Passed, "done\n")
    );
}

#[test]
fn cargo_plugins_need_their_own_program() {
    let argv = |s: &str| split_words(s).unwrap();
    assert_eq!(
        required_program(&argv("cargo audit")).unwrap(),
        "cargo-audit"
    );
    assert_eq!(
        required_program(&argv("cargo +nightly fmt --check")).unwrap(),
        "cargo-fmt"
    );
    assert_eq!(
        required_program(&argv("cargo test --quiet")).unwrap(),
        "cargo"
    );
    assert_eq!(required_program(&argv("ruff check .")).unwrap(), "ruff");

    let bin = tempfile::tempdir().unwrap();
    let cargo = bin.path().join("cargo");
    std::fs::write(&cargo, "#!/bin/sh\nexit 0\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&cargo, std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = project_with(&[("Cargo.toml", "[package]\nname = \"x\"\n")]);
    let p = Project::detect(dir.path()).unwrap();
    let path = bin.path().as_os_str();
    let scan = run_check(
        &p,
        Check::Scan,
        false,
        &[],
        Some(path),
        Duration::from_secs(10),
        &mut quiet(&mut Vec::new()),
    )
    .unwrap();
    assert_eq!(
        scan.outcome,
        Outcome::Skipped("cargo-audit not on PATH".into())
    );
    let check = run_check(
        &p,
        Check::Typecheck,
        false,
        &[],
        Some(path),
        Duration::from_secs(10),
        &mut quiet(&mut Vec::new()),
    )
    .unwrap();
    assert_eq!(check.outcome, Outcome::Passed);
}

#[test]
fn helper_arguments() {
    let a = |s: &str| split_words(s).unwrap();
    assert_eq!(single_args(Check::Lint, &[]).unwrap(), (false, &[][..]));
    assert!(single_args(Check::Format, &a("--check")).unwrap().0);
    assert!(!single_args(Check::Format, &[]).unwrap().0);
    assert_eq!(
        single_args(Check::Test, &a("my_test --nocapture"))
            .unwrap()
            .1
            .len(),
        2
    );
    assert!(
        single_args(Check::Lint, &a("x"))
            .unwrap_err()
            .message
            .contains("usage: lint")
    );
    assert!(single_args(Check::Format, &a("--fix")).is_err());

    let dir = project_with(&[
        ("setup.py", ""),
        (
            ".crackerjack.toml",
            "[commands]\ntest = \"sh -c 'exit 0'\"\n",
        ),
    ]);
    let p = Project::detect(dir.path()).unwrap();
    let path = system_path();
    let extra = a("'a b' c");
    let run = run_check(
        &p,
        Check::Test,
        false,
        &extra,
        Some(&path),
        Duration::from_secs(10),
        &mut quiet(&mut Vec::new()),
    )
    .unwrap();
    assert_eq!(run.command, "sh -c 'exit 0' 'a b' c");
}

/// The block style pre-commit's docs and `autoupdate` write.
#[test]
fn pre_commit_config_is_read_as_yaml() {
    let yaml = r#"# top
repos:
  - repo: https://github.com/pre-commit/pre-commit-hooks
    rev: v4.6.0
    hooks:
      - id: trailing-whitespace
      - id: end-of-file-fixer  # eof
  - repo: local
    hooks:
      - id: "cargo-fmt"
        name: cargo fmt
        entry: cargo fmt
"#;
    let repos = pre_commit_hooks(yaml).unwrap();
    assert_eq!(
        repos,
        vec![
            HookRepo {
                repo: "https://github.com/pre-commit/pre-commit-hooks".into(),
                rev: Some("v4.6.0".into()),
                ids: vec!["trailing-whitespace".into(), "end-of-file-fixer".into()],
            },
            HookRepo {
                repo: "local".into(),
                rev: None,
                ids: vec!["cargo-fmt".into()],
            },
        ]
    );
    assert_eq!(pre_commit_hooks("").unwrap(), vec![]);
}

/// What the line reader got wrong: flow-style hook lists (it found no hooks), keys inside a
/// block scalar (it took `id: not-a-hook` for a hook and `rev:` text for the rev), a `#`
/// inside quotes (it cut the value).
#[test]
fn pre_commit_yaml_that_lines_misread() {
    let yaml = r#"repos:
  - repo: https://github.com/psf/black
    rev: "24.1.0"
    hooks: [{id: black}, {id: black-jupyter}]
  - repo: local
    hooks:
      - id: check
        entry: |
          sh -c 'echo
          id: not-a-hook
          rev: nope'
        language: system
      - id: 'tag#1'
"#;
    let repos = pre_commit_hooks(yaml).unwrap();
    assert_eq!(
        repos,
        vec![
            HookRepo {
                repo: "https://github.com/psf/black".into(),
                rev: Some("24.1.0".into()),
                ids: vec!["black".into(), "black-jupyter".into()],
            },
            HookRepo {
                repo: "local".into(),
                rev: None,
                ids: vec!["check".into(), "tag#1".into()],
            },
        ]
    );
    let err = pre_commit_hooks("repos:\n  - rev: v1\n").unwrap_err();
    assert!(err.contains("repo"), "{err}");
    assert!(pre_commit_hooks("repos: [unclosed\n").is_err());
}

/// `git` with `args` in `dir`, which must succeed.
fn git(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .args(["-c", "user.email=t@example.invalid", "-c", "user.name=t"])
        .args(args)
        .current_dir(dir)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

fn lookup(start: &std::path::Path) -> HooksLookup {
    let path = system_path();
    hooks_dir(start, Some(&path), &NEVER).unwrap()
}

#[test]
fn hooks_skip_samples() {
    let dir = project_with(&[
        (".git/hooks/pre-commit.sample", "x"),
        (
            ".git/hooks/pre-commit",
            "#!/bin/sh\n# installed by pre-commit\n",
        ),
        (".git/hooks/commit-msg", "#!/bin/sh\n"),
    ]);
    let found = installed_hooks(&dir.path().join(".git/hooks"));
    let names: Vec<(&str, bool)> = found.iter().map(|(n, _, pc)| (n.as_str(), *pc)).collect();
    assert_eq!(names, [("commit-msg", false), ("pre-commit", true)]);
}

/// Hooks are where git runs them from: a subdirectory finds the top's, a linked worktree the
/// main repository's (not `.git/worktrees/NAME/hooks`), `core.hooksPath` wins, relative to the
/// work tree; outside a repository there are none.
#[test]
fn hooks_are_found_where_git_looks() {
    let base = tempfile::tempdir().unwrap();
    let main = base.path().join("main");
    std::fs::create_dir_all(main.join("sub")).unwrap();
    git(&main, &["init", "-q"]);
    git(&main, &["commit", "-q", "--allow-empty", "-m", "first"]);
    let main = main.canonicalize().unwrap();
    let hooks_of = |start: &std::path::Path| match lookup(start) {
        HooksLookup::Found { work, hooks } => (work, hooks.canonicalize().unwrap()),
        other => panic!("{}: {other:?}", start.display()),
    };
    assert_eq!(hooks_of(&main), (main.clone(), main.join(".git/hooks")));
    assert_eq!(
        hooks_of(&main.join("sub")),
        (main.clone(), main.join(".git/hooks"))
    );

    let linked = base.path().join("linked");
    git(&main, &["worktree", "add", "-q", linked.to_str().unwrap()]);
    let linked = linked.canonicalize().unwrap();
    assert_eq!(hooks_of(&linked), (linked.clone(), main.join(".git/hooks")));

    std::fs::create_dir_all(main.join("tools/hooks")).unwrap();
    git(&main, &["config", "core.hooksPath", "tools/hooks"]);
    assert_eq!(
        hooks_of(&main.join("sub")),
        (main.clone(), main.join("tools/hooks"))
    );
    // Relative to the work tree the hook runs in.
    std::fs::create_dir_all(linked.join("tools/hooks")).unwrap();
    assert_eq!(hooks_of(&linked).1, linked.join("tools/hooks"));

    let outside = tempfile::tempdir().unwrap();
    assert_eq!(lookup(outside.path()), HooksLookup::NotARepo);
    assert!(matches!(
        hooks_dir(outside.path(), Some(std::ffi::OsStr::new("")), &NEVER).unwrap(),
        HooksLookup::NoGit(_)
    ));
}
