//! The helpers that act on the machine, run for real in a controlled setup: mahavishnu's
//! `sync` on a buffer filled while the server was down; crackerjack's checks on temp
//! projects with fake tools on PATH; `show_hooks` in a real git repository. (The coverage
//! list of every shell's helpers is at the top of `shell_helpers`.)

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common::{Server, bin, free_port};
use crate::shell_helpers::{Ran, cells, row, shell_run};

/// An executable `#!/bin/sh` script at `dir/name` (only shell built-ins: PATH may hold
/// nothing else).
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A directory under `tmp`, by its canonical path (the one the shell's cwd reports).
fn dir(tmp: &Path, name: &str) -> PathBuf {
    let d = tmp.join(name);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::canonicalize(d).unwrap()
}

/// The number in the `name` row of sync's table.
fn count(text: &str, name: &str) -> u64 {
    row(text, name)[1]
        .parse()
        .unwrap_or_else(|_| panic!("{name}: {text}"))
}

#[test]
fn mahavishnu_sync_delivers_what_the_buffer_holds() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("client");
    // The server listens first, so that the port with nothing on it cannot become its port
    // (the shell's detached sender keeps trying that one).
    let server = Server::start(&tmp.path().join("server"));
    let dead = format!("http://127.0.0.1:{}", free_port());
    // A tracked shell while nothing listens: its session (start, one failed command, end)
    // waits in the buffer.
    let o = bin()
        .env("SESSION_BUDDY_HOME", &home)
        .env("SESSION_BUDDY_URL", &dead)
        .args(["shell", "oneiric", "--no-banner", "-c", "no_such_helper"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));

    let intro = format!(
        "Tracking is disabled (SESSION_BUDDY_TRACKING=off); delivering what the buffer already holds.\n\
         Delivering {} to ",
        home.join("buffer.db").display()
    );
    // With the server still down: nothing delivered, everything left, the shell says why.
    let down = shell_run(&home, &dead, "mahavishnu", "sync", None, &[]);
    assert_eq!(down.code, Some(1), "{}", down.out);
    assert!(
        down.out.starts_with(&format!("{intro}{dead} …\n")),
        "{}",
        down.out
    );
    assert_eq!(count(&down.out, "delivered"), 0, "{}", down.out);
    let queued = count(&down.out, "remaining");
    assert!(
        queued >= 3,
        "start, command and end are queued: {}",
        down.out
    );
    assert!(
        row(&down.out, "error")[1].starts_with("server unreachable"),
        "{}",
        down.out
    );
    assert!(down.out.ends_with("Sync incomplete.\n"), "{}", down.out);
    assert!(
        down.err.contains("delivery stopped: server unreachable")
            && down
                .err
                .contains(&format!("; {queued} events still queued")),
        "{}",
        down.err
    );

    // Against the server that is up: sync delivers every queued event, once.
    let up = shell_run(&home, &server.url, "mahavishnu", "sync", None, &[]);
    let text = up.ok("sync");
    assert!(
        text.starts_with(&format!("{intro}{} …\n", server.url)),
        "{text}"
    );
    for (name, n) in [
        ("delivered", queued),
        ("duplicates", 0),
        ("rejected", 0),
        ("dead-lettered", 0),
        ("remaining", 0),
    ] {
        assert_eq!(count(&text, name), n, "{name}: {text}");
    }
    assert_eq!(row(&text, "error")[1], "none");
    assert!(
        text.ends_with("Sync complete: the buffer is empty.\n"),
        "{text}"
    );

    // The server holds that session, made of exactly the delivered events.
    let sessions: Value = ureq::get(format!("{}/v1/sessions", server.url))
        .call()
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap();
    let sessions = sessions["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    let s = &sessions[0];
    assert_eq!(
        (
            &s["component"],
            &s["status"],
            &s["command_count"],
            &s["error_count"],
            &s["exit_code"]
        ),
        (
            &"oneiric".into(),
            &"ended".into(),
            &1.into(),
            &1.into(),
            &1.into()
        ),
        "{s}"
    );
    let id = s["session_id"].as_str().unwrap();
    let timeline: Value = ureq::get(format!("{}/v1/sessions/{id}/events", server.url))
        .call()
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap();
    assert_eq!(
        timeline["events"].as_array().unwrap().len() as u64,
        queued,
        "{timeline}"
    );

    // Nothing is left to deliver.
    let again = shell_run(&home, &server.url, "mahavishnu", "sync", None, &[]).ok("sync again");
    assert_eq!(count(&again, "delivered"), 0, "{again}");
    assert_eq!(count(&again, "remaining"), 0, "{again}");
}

/// A crackerjack helper run in `cwd` with PATH = `path` only.
fn crackerjack(home: &Path, cwd: &Path, path: &Path, commands: &str) -> Ran {
    shell_run(
        home,
        "http://127.0.0.1:9",
        "crackerjack",
        commands,
        Some(cwd),
        &[("PATH", path.to_str().unwrap())],
    )
}

/// The line of `text` starting with `start`.
fn line<'a>(text: &'a str, start: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no line starting with '{start}' in:\n{text}"))
}

/// The first cells of the table rows after the header line starting with `header`.
fn column(text: &str, header: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| !l.starts_with(header))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| cells(l).into_iter().next())
        .collect()
}

#[test]
fn crackerjack_checks_run_a_python_projects_tools() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let project = dir(tmp.path(), "app");
    write(
        &project.join("pyproject.toml"),
        "[project]\nname = \"app\"\n",
    );
    write(&project.join("app.py"), "x=1\n");
    let src = dir(&project, "src");
    let tools = dir(tmp.path(), "bin");
    script(
        &tools,
        "pytest",
        "echo \"pytest $*\"\nfor a in \"$@\"; do echo \"arg: $a\"; done\n\
         echo \"in $(pwd)\"\necho '3 passed'",
    );
    script(
        &tools,
        "ruff",
        "case \"$1 $2\" in\n\
         'check .') echo 'All checks passed!'; exit 0;;\n\
         'format --check') echo 'Would reformat: app.py'; echo '1 file would be reformatted'; exit 1;;\n\
         'format .') echo '1 file reformatted'; : > formatted.marker; exit 0;;\n\
         esac\necho \"unexpected: $*\" >&2; exit 64",
    );
    script(
        &tools,
        "mypy",
        "echo 'Success: no issues found in 1 source file'",
    );
    // No bandit: scan is skipped.
    let run = |commands: &str| crackerjack(&home, &src, &tools, commands);

    let adapters = run("show_adapters").ok("show_adapters");
    assert!(
        adapters.starts_with(&format!(
            "Project: Python at {}\nConfig:  defaults (no .crackerjack.toml;",
            project.display()
        )),
        "{adapters}"
    );
    let on_path = |p: &str| tools.join(p).display().to_string();
    assert_eq!(
        column(&adapters, "Helper"),
        [
            "test",
            "lint",
            "scan",
            "format_code",
            "format_code --check",
            "typecheck"
        ]
    );
    for (helper, cells) in [
        ("test", ["pytest -q", "pytest", &on_path("pytest")]),
        ("lint", ["ruff check .", "ruff", &on_path("ruff")]),
        ("scan", ["bandit -q -r .", "bandit", "MISSING (skipped)"]),
        ("format_code", ["ruff format .", "ruff", &on_path("ruff")]),
        (
            "format_code --check",
            ["ruff format --check .", "ruff", &on_path("ruff")],
        ),
        ("typecheck", ["mypy .", "mypy", &on_path("mypy")]),
    ] {
        assert_eq!(row(&adapters, helper)[1..], cells, "{helper}: {adapters}");
    }

    // Each check alone: the tool runs at the project root, extra test arguments go to it.
    let test = run("test -k smoke").ok("test");
    assert!(test.starts_with("▶ test (pytest -q -k smoke)\n"), "{test}");
    assert!(
        test.contains(&format!(
            "  | pytest -q -k smoke\n  | arg: -q\n  | arg: -k\n  | arg: smoke\n  | in {}\n  | 3 passed\n",
            project.display()
        )),
        "{test}"
    );
    assert!(
        line(&test, "✓ test passed in ").ends_with("  (pytest -q -k smoke)"),
        "{test}"
    );
    // Words are split as the shell splits them, and quoted back in the report.
    let quoted = run("test -k 'smoke and not slow'").ok("test, quoted");
    assert!(
        quoted.contains("  | arg: -q\n  | arg: -k\n  | arg: smoke and not slow\n"),
        "{quoted}"
    );
    assert!(
        line(&quoted, "✓ test passed in ").ends_with("  (pytest -q -k 'smoke and not slow')"),
        "{quoted}"
    );
    let lint = run("lint").ok("lint");
    assert!(lint.contains("  | All checks passed!\n"), "{lint}");
    assert!(
        line(&lint, "✓ lint passed in ").ends_with("  (ruff check .)"),
        "{lint}"
    );
    let typecheck = run("typecheck").ok("typecheck");
    assert!(
        line(&typecheck, "✓ typecheck passed in ").ends_with("  (mypy .)"),
        "{typecheck}"
    );
    let scan = run("scan");
    assert_eq!(scan.code, Some(1));
    assert!(
        scan.out.starts_with(
            "- scan did not run: bandit not on PATH\n  (install it, or set another command:"
        ),
        "{}",
        scan.out
    );
    assert!(
        scan.err
            .contains("error: scan did not run: bandit not on PATH"),
        "{}",
        scan.err
    );
    let check = run("format_code --check");
    assert_eq!(check.code, Some(1), "{}", check.out);
    assert!(
        line(&check.out, "✗ format_code FAIL (exit status 1) after ")
            .ends_with("  (ruff format --check .)"),
        "{}",
        check.out
    );
    assert!(
        check
            .err
            .contains("error: format_code failed: FAIL (exit status 1)"),
        "{}",
        check.err
    );
    let marker = project.join("formatted.marker");
    assert!(!marker.exists(), "--check only checks");
    let format = run("format_code").ok("format_code");
    assert!(
        line(&format, "✓ format_code passed in ").ends_with("  (ruff format .)"),
        "{format}"
    );
    assert!(marker.exists(), "the formatter ran in the project root");
    let bad = run("lint --fix");
    assert_eq!(bad.code, Some(1));
    assert!(
        bad.err.contains("usage: lint (takes no arguments)"),
        "{}",
        bad.err
    );

    // crack: all five in turn, a table, the failure's last lines, the counts.
    let crack = run("crack");
    assert_eq!(crack.code, Some(1), "{}", crack.out);
    assert!(
        crack
            .out
            .starts_with(&format!("Python project at {}\n", project.display())),
        "{}",
        crack.out
    );
    assert_eq!(
        column(&crack.out, "Check"),
        ["format_code", "lint", "typecheck", "scan", "test"],
        "{}",
        crack.out
    );
    for (check, result, command) in [
        (
            "format_code",
            "FAIL (exit status 1)",
            "ruff format --check .",
        ),
        ("lint", "pass", "ruff check ."),
        ("typecheck", "pass", "mypy ."),
        ("test", "pass", "pytest -q"),
    ] {
        let r = row(&crack.out, check);
        assert_eq!((r[1].as_str(), r[3].as_str()), (result, command), "{r:?}");
    }
    assert_eq!(
        row(&crack.out, "scan")[1..],
        ["skipped (bandit not on PATH)", "-", "bandit -q -r ."]
    );
    assert!(
        crack.out.contains(
            "\nformat_code (ruff format --check .), last lines:\n\
             \x20 | Would reformat: app.py\n\
             \x20 | 1 file would be reformatted\n"
        ),
        "{}",
        crack.out
    );
    assert!(
        crack.out.ends_with("\n3 passed, 1 failed, 1 skipped\n"),
        "{}",
        crack.out
    );
    assert!(
        crack
            .err
            .contains("error: quality checks failed: format_code"),
        "{}",
        crack.err
    );
}

#[test]
fn crackerjack_runs_a_cargo_workspaces_configured_commands() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let ws = dir(tmp.path(), "ws");
    write(
        &ws.join("Cargo.toml"),
        "[workspace]\nmembers = [\"crates/*\"]\n",
    );
    write(&ws.join("crates/a/Cargo.toml"), "[package]\nname = \"a\"\n");
    let member = dir(&ws, "crates/a/src");
    write(
        &ws.join(".crackerjack.toml"),
        "[commands]\ntest = \"./ci/test.sh --all\"\nscan = \"\"\n",
    );
    script(
        &ws.join("ci"),
        "test.sh",
        "echo \"args: $*\"\necho 'test result: FAILED. 1 passed; 2 failed'\nexit 3",
    );
    let tools = dir(tmp.path(), "bin");
    script(
        &tools,
        "cargo",
        "case \"$1\" in\n\
         clippy) echo 'error: could not compile a' >&2; exit 101;;\n\
         fmt|check) echo \"cargo $*\"; exit 0;;\n\
         esac\nexit 64",
    );
    // Cargo runs its plugins; crackerjack wants them on PATH.
    script(&tools, "cargo-clippy", "exit 0");
    script(&tools, "cargo-fmt", "exit 0");
    let run = |commands: &str| crackerjack(&home, &member, &tools, commands);

    let adapters = run("show_adapters").ok("show_adapters");
    assert!(
        adapters.starts_with(&format!(
            "Project: Cargo (Rust) at {}\nConfig:  {}\n",
            ws.display(),
            ws.join(".crackerjack.toml").display()
        )),
        "{adapters}"
    );
    let on_path = |p: &str| tools.join(p).display().to_string();
    let script_path = ws.join("./ci/test.sh").display().to_string();
    for (helper, cells) in [
        ("test", ["./ci/test.sh --all", "./ci/test.sh", &script_path]),
        ("scan", ["(disabled)", "-", "-"]),
        (
            "lint",
            [
                "cargo clippy --quiet -- -D warnings",
                "cargo-clippy",
                &on_path("cargo-clippy"),
            ],
        ),
        (
            "format_code",
            ["cargo fmt", "cargo-fmt", &on_path("cargo-fmt")],
        ),
        (
            "format_code --check",
            ["cargo fmt --check", "cargo-fmt", &on_path("cargo-fmt")],
        ),
        (
            "typecheck",
            ["cargo check --quiet", "cargo", &on_path("cargo")],
        ),
    ] {
        assert_eq!(row(&adapters, helper)[1..], cells, "{helper}: {adapters}");
    }

    let test = run("test --nocapture");
    assert_eq!(test.code, Some(1), "{}", test.out);
    assert!(
        test.out.contains("  | args: --all --nocapture\n"),
        "{}",
        test.out
    );
    assert!(
        line(&test.out, "✗ test FAIL (exit status 3) after ")
            .ends_with("  (./ci/test.sh --all --nocapture)"),
        "{}",
        test.out
    );
    let scan = run("scan");
    assert_eq!(scan.code, Some(1));
    assert_eq!(
        scan.out,
        "- scan did not run: disabled in .crackerjack.toml\n"
    );

    let crack = run("crack");
    assert_eq!(crack.code, Some(1), "{}", crack.out);
    assert!(
        crack
            .out
            .starts_with(&format!("Cargo (Rust) project at {}\n", ws.display())),
        "a member's checks run at the workspace root: {}",
        crack.out
    );
    for (check, result, command) in [
        ("format_code", "pass", "cargo fmt --check"),
        (
            "lint",
            "FAIL (exit status 101)",
            "cargo clippy --quiet -- -D warnings",
        ),
        ("typecheck", "pass", "cargo check --quiet"),
        ("test", "FAIL (exit status 3)", "./ci/test.sh --all"),
    ] {
        let r = row(&crack.out, check);
        assert_eq!((r[1].as_str(), r[3].as_str()), (result, command), "{r:?}");
    }
    assert_eq!(
        row(&crack.out, "scan")[1..],
        ["skipped (disabled in .crackerjack.toml)", "-"]
    );
    assert!(
        crack.out.contains(
            "\nlint (cargo clippy --quiet -- -D warnings), last lines:\n\
             \x20 | error: could not compile a\n"
        ),
        "{}",
        crack.out
    );
    assert!(
        crack.out.contains(
            "\ntest (./ci/test.sh --all), last lines:\n\
             \x20 | args: --all\n\
             \x20 | test result: FAILED. 1 passed; 2 failed\n"
        ),
        "{}",
        crack.out
    );
    assert!(
        crack.out.ends_with("\n2 passed, 2 failed, 1 skipped\n"),
        "{}",
        crack.out
    );
    assert!(
        crack
            .err
            .contains("error: quality checks failed: lint, test"),
        "{}",
        crack.err
    );
}

#[test]
fn crackerjack_with_no_tools_runs_nothing_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let project = dir(tmp.path(), "app");
    write(&project.join("setup.py"), "");
    let empty = dir(tmp.path(), "empty-bin");
    let crack = crackerjack(&home, &project, &empty, "crack");
    assert_eq!(crack.code, Some(1), "{}", crack.out);
    for (check, program) in [
        ("format_code", "ruff"),
        ("lint", "ruff"),
        ("typecheck", "mypy"),
        ("scan", "bandit"),
        ("test", "pytest"),
    ] {
        assert_eq!(
            row(&crack.out, check)[1..3],
            [format!("skipped ({program} not on PATH)"), "-".to_string()]
        );
    }
    assert!(
        crack
            .out
            .contains("\n0 passed, 0 failed, 5 skipped\n✗ Nothing ran:"),
        "{}",
        crack.out
    );
    assert!(
        crack
            .err
            .contains("error: nothing ran: all 5 checks were skipped"),
        "{}",
        crack.err
    );
    // A config file that names no known command is refused, naming the key.
    let bad = dir(tmp.path(), "bad");
    write(&bad.join("setup.cfg"), "");
    write(
        &bad.join(".crackerjack.toml"),
        "[commands]\ntests = \"pytest\"\n",
    );
    let o = crackerjack(&home, &bad, &empty, "show_adapters");
    assert_eq!(o.code, Some(1));
    assert!(
        o.err.contains(&format!(
            "{}: unknown command 'tests'; known: test, lint, scan, format_code, format_check, typecheck",
            bad.join(".crackerjack.toml").display()
        )),
        "{}",
        o.err
    );
    // Outside any project there is nothing to check.
    let nowhere = dir(tmp.path(), "nowhere");
    let o = crackerjack(&home, &nowhere, &empty, "show_adapters");
    assert_eq!(o.code, Some(1));
    assert!(
        o.err.contains(&format!(
            "no Cargo or Python project at or above {}",
            nowhere.display()
        )),
        "{}",
        o.err
    );
}

fn git(repo: &Path, args: &[&str]) {
    let o = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn crackerjack_show_hooks_reads_a_real_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let repo = dir(tmp.path(), "repo");
    git(&repo, &["init", "-q"]);
    write(&repo.join("pyproject.toml"), "[project]\nname = \"repo\"\n");
    let src = dir(&repo, "src");
    let hooks = repo.join(".git/hooks");
    let pre_commit = script(
        &hooks,
        "pre-commit",
        "# installed by pre-commit\nexec pre-commit hook-impl --hook-type=pre-commit",
    );
    let commit_msg = script(&hooks, "commit-msg", "exit 0");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&commit_msg, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    write(&hooks.join("pre-push.sample"), "#!/bin/sh\n");
    write(
        &repo.join(".pre-commit-config.yaml"),
        "repos:\n\
         \x20 - repo: https://github.com/astral-sh/ruff-pre-commit\n\
         \x20   rev: v0.6.9\n\
         \x20   hooks:\n\
         \x20     - id: ruff\n\
         \x20     - id: ruff-format\n\
         \x20 - repo: local\n\
         \x20   hooks:\n\
         \x20     - id: pytest-check\n\
         \x20       name: pytest\n\
         \x20       entry: pytest\n\
         \x20       language: system\n",
    );
    let url = "http://127.0.0.1:9";
    let show =
        || shell_run(&home, url, "crackerjack", "show_hooks", Some(&src), &[]).ok("show_hooks");

    let out = show();
    let first = out.lines().next().unwrap();
    assert!(
        first.starts_with("Git hooks in ") && first.ends_with(".git/hooks:"),
        "{out}"
    );
    assert_eq!(column(&out, "Hook"), ["commit-msg", "pre-commit"], "{out}");
    assert_eq!(
        row(&out, "commit-msg")[1..],
        ["NO (git ignores it)", "custom"]
    );
    assert_eq!(row(&out, "pre-commit")[1..], ["yes", "pre-commit"]);
    assert!(
        out.contains(&format!(
            "\n{}: 3 hook(s)\n",
            repo.join(".pre-commit-config.yaml").display()
        )),
        "{out}"
    );
    assert_eq!(
        row(&out, "https://github.com/astral-sh/ruff-pre-commit")[1..],
        ["v0.6.9", "ruff, ruff-format"]
    );
    assert_eq!(row(&out, "local")[1..], ["-", "pytest-check"]);
    assert!(!out.contains("not installed as a git hook"), "{out}");

    // Without pre-commit's own hook the config is not in force, and it says so.
    std::fs::remove_file(&pre_commit).unwrap();
    let out = show();
    assert_eq!(column(&out, "Hook"), ["commit-msg"], "{out}");
    assert!(
        out.ends_with("(not installed as a git hook: run `pre-commit install`)\n"),
        "{out}"
    );

    // core.hooksPath moves the hooks.
    git(&repo, &["config", "core.hooksPath", ".githooks"]);
    script(&repo.join(".githooks"), "pre-push", "exit 0");
    let out = show();
    let first = out.lines().next().unwrap();
    assert!(first.ends_with(".githooks:"), "{out}");
    assert_eq!(column(&out, "Hook"), ["pre-push"], "{out}");
    assert_eq!(row(&out, "pre-push")[1..], ["yes", "custom"]);

    // Outside a repository: no hooks, no error.
    let plain = dir(tmp.path(), "plain");
    write(&plain.join("setup.cfg"), "");
    let out =
        shell_run(&home, url, "crackerjack", "show_hooks", Some(&plain), &[]).ok("show_hooks");
    assert_eq!(
        out,
        format!(
            "Not in a git repository ({}): no git hooks\n",
            plain.display()
        )
    );
}

#[test]
fn mahavishnu_ps_shows_its_own_tracked_shell_once_sync_delivered_it() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("server"));
    let child = bin()
        .env("SESSION_BUDDY_HOME", tmp.path().join("client"))
        .env("SESSION_BUDDY_URL", &server.url)
        .args([
            "shell",
            "mahavishnu",
            "--no-banner",
            "-c",
            "status; sync; ps",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let o = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let id = row(&out, "Session ID")[1].clone();
    let host = crate::shell_helpers::this_host();
    assert!(
        out.contains(&format!(
            "\n1 tracked shell active on {host}: 1 alive, 0 stale.\n"
        )),
        "{out}"
    );
    let own = row(&out, &id);
    assert_eq!(
        (&own[1], &own[3], &own[4], own.last().unwrap().as_str()),
        (
            &"mahavishnu".to_string(),
            &pid,
            &"yes".to_string(),
            "this shell"
        ),
        "{out}"
    );
    assert!(!out.contains("is not on the server yet"), "{out}");
}
