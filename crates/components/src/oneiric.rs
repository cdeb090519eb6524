//! Oneiric (Foundation): the product's own layered configuration, and which layer set each
//! value: defaults < system file < user file < project file < `SESSION_BUDDY_*` environment <
//! flags (`reload_settings key=value`). The layers are `session-buddy-config`'s, the ones
//! `serve`, `config show` and every client resolve: what these helpers show is what runs.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Local};
use session_buddy_config::{
    self as layers, FileState, Flag, Inputs, KEYS, Key, Layer, Resolved, Snapshot,
};
use session_buddy_shell::{Context, Helper, HelperError, HelperResult, ShellSpec};

/// What `reload_settings` compares against, and the flags it last set.
struct State {
    snapshot: Snapshot,
    taken_at: DateTime<Local>,
    what: &'static str,
    flags: Vec<Flag>,
}

type Shared = Arc<Mutex<State>>;

pub(crate) fn spec() -> ShellSpec {
    let state: Shared = Arc::new(Mutex::new(State {
        snapshot: layers::load(&Inputs::from_process(Vec::new())).snapshot(),
        taken_at: Local::now(),
        what: "the shell started",
        flags: Vec::new(),
    }));
    let (s1, s2, s3) = (state.clone(), state.clone(), state);
    ShellSpec {
        component: "oneiric".into(),
        display_name: "Oneiric".into(),
        version: crate::VERSION.into(),
        tagline: "Layered configuration: which layer set each value, and is it valid".into(),
        role: "Foundation".into(),
        shell_type: "OneiricShell".into(),
        help_notes: String::new(),
        helpers: vec![
            Helper::new(
                "show_layers",
                "every setting's effective value, the layer that set it, and each layer's value \
                 (default < system < user < project < env < flag)",
                move |ctx, args| show_layers(ctx, args, &s1),
            )
            .usage("[key]")
            .complete(|req| req.first(KEYS.iter().map(|k| k.name))),
            Helper::new(
                "validate_config",
                "parse every config file present and the SESSION_BUDDY_* environment; report \
                 unknown keys, wrong types and bad values",
                move |ctx, args| validate_config(ctx, args, &s2),
            ),
            Helper::new(
                "reload_settings",
                "re-read every layer now (key=value pairs become the flag layer), show what \
                 changed since the shell started or the last reload, and what a reload cannot \
                 change in running processes",
                move |ctx, args| reload_settings(ctx, args, &s3),
            )
            .usage("[key=value…]")
            .complete(|_| KEYS.iter().map(|k| format!("{}=", k.name)).collect()),
        ],
    }
}

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn load_now(flags: Vec<Flag>) -> Resolved {
    layers::load(&Inputs::from_process(flags))
}

fn show_layers(ctx: &mut Context<'_>, args: &[String], state: &Shared) -> HelperResult {
    let keys: Vec<&Key> = match args {
        [] => KEYS.iter().collect(),
        [name] => vec![layers::find_key(name).ok_or_else(|| {
            HelperError::new(format!(
                "unknown key '{name}'; known: {}",
                layers::known_keys()
            ))
        })?],
        _ => return Err("usage: show_layers [key]".into()),
    };
    let flags = lock(state).flags.clone();
    let resolved = load_now(flags);
    let out = &mut *ctx.out;
    writeln!(out, "Configuration layers (later wins):")?;
    for (i, lv) in resolved.layers.iter().enumerate() {
        let state = match &lv.state {
            FileState::NotAFile if lv.values.is_empty() && lv.layer != Layer::Default => {
                "none set".to_string()
            }
            FileState::NotAFile | FileState::Loaded => format!("{} set", lv.values.len()),
            FileState::Absent => "not present".to_string(),
            FileState::Broken(_) => "BROKEN".to_string(),
        };
        writeln!(
            out,
            "  {}. {:<8} {}  ({state})",
            i + 1,
            lv.layer.name(),
            lv.origin
        )?;
        if !lv.pins.is_empty() {
            writeln!(out, "     {:<8} pins {}", "", lv.pins.join(", "))?;
        }
    }
    writeln!(out)?;
    out.write_all(layers::effective_lines(&resolved, &keys).as_bytes())?;
    let below: Vec<String> = keys
        .iter()
        .filter_map(|key| {
            let set: Vec<String> = resolved
                .layers
                .iter()
                .filter_map(|lv| {
                    let v = lv.values.get(key.name)?;
                    Some(format!("{} {}", lv.layer.name(), shown(&v.text, v.valid)))
                })
                .collect();
            (set.len() > 1).then(|| format!("{}: {}", key.name, set.join("; ")))
        })
        .collect();
    if !below.is_empty() {
        writeln!(out, "\nSet in more than one layer (lowest first):")?;
        for line in below {
            out.write_all(wrap(&line, "  ", "      ", 80).as_bytes())?;
        }
    }
    for w in &resolved.warnings {
        out.write_all(wrap(&layers::problem_line(w), "! ", "    ", 80).as_bytes())?;
    }
    if !resolved.problems.is_empty() {
        writeln!(
            out,
            "\n{} problem(s) (values marked !); run validate_config for details",
            resolved.problems.len()
        )?;
    }
    Ok(())
}

/// `text` wrapped at spaces to `width` columns (a word longer than a line, e.g. a path, stays
/// whole): `first` before the first line, `rest` before the others.
fn wrap(text: &str, first: &str, rest: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = first.to_string();
    let mut fresh = true;
    for word in text.split(' ') {
        if !fresh && line.chars().count() + 1 + word.chars().count() > width {
            out.push_str(&line);
            out.push('\n');
            line = rest.to_string();
            fresh = true;
        }
        if !fresh {
            line.push(' ');
        }
        line.push_str(word);
        fresh = false;
    }
    out.push_str(&line);
    out.push('\n');
    out
}

/// A value for the table: `(none)` for an empty list, a `!` after an invalid one.
fn shown(text: &str, valid: bool) -> String {
    let t = if text.is_empty() { "(none)" } else { text };
    if valid {
        t.to_string()
    } else {
        format!("{t} !")
    }
}

fn validate_config(ctx: &mut Context<'_>, args: &[String], state: &Shared) -> HelperResult {
    if !args.is_empty() {
        return Err("usage: validate_config (takes no arguments)".into());
    }
    let flags = lock(state).flags.clone();
    let resolved = load_now(flags);
    let out = &mut *ctx.out;
    for lv in &resolved.layers {
        let problems = resolved
            .problems
            .iter()
            .filter(|p| p.layer == lv.layer)
            .count();
        let mark = if problems == 0 { "✓" } else { "✗" };
        let what = match (&lv.state, lv.layer) {
            (_, Layer::Default) => continue,
            (FileState::Absent, _) => "not present".to_string(),
            (FileState::Broken(_), _) => "cannot be parsed".to_string(),
            _ if problems > 0 => format!("{problems} problem(s)"),
            _ => format!("valid ({} set)", lv.values.len()),
        };
        writeln!(out, "{mark} {:<8} {}: {what}", lv.layer.name(), lv.origin)?;
    }
    for p in &resolved.problems {
        out.write_all(wrap(&layers::problem_line(p), "  ✗ ", "      ", 80).as_bytes())?;
    }
    for w in &resolved.warnings {
        out.write_all(wrap(&layers::problem_line(w), "  ! ", "      ", 80).as_bytes())?;
    }
    match resolved.problems.len() {
        0 => {
            writeln!(out, "✓ Configuration is valid")?;
            Ok(())
        }
        _ => Err(problems_error(
            "the configuration has",
            &resolved.problems,
            "; fix them and run validate_config again",
        )),
    }
}

/// The error a command is recorded with: the problems themselves, not a pointer to the screen.
fn problems_error(lead: &str, problems: &[layers::Problem], tail: &str) -> HelperError {
    let n = problems.len();
    let list: Vec<String> = problems.iter().map(layers::problem_line).collect();
    HelperError::new(format!(
        "{lead} {n} problem{}: {}{tail}",
        if n == 1 { "" } else { "s" },
        list.join("; ")
    ))
}

fn reload_settings(ctx: &mut Context<'_>, args: &[String], state: &Shared) -> HelperResult {
    let flags = layers::parse_flags(args)?;
    let resolved = load_now(flags.clone());
    let now = resolved.snapshot();
    let mut st = lock(state);
    let changes: Vec<Vec<String>> = KEYS
        .iter()
        .filter_map(|key| {
            let before = st.snapshot.get(key.name);
            let after = now.get(key.name);
            (before != after).then(|| {
                let show = |v: Option<&(String, layers::Source)>| match v {
                    Some((text, source)) => {
                        format!("{} ({})", shown(text, true), source.layer.name())
                    }
                    None => "-".into(),
                };
                vec![key.name.to_string(), show(before), show(after)]
            })
        })
        .collect();
    let since = format!("{} ({})", st.taken_at.format("%H:%M:%S"), st.what);
    let files = resolved
        .layers
        .iter()
        .filter(|l| l.state == FileState::Loaded)
        .count();
    let env = resolved.layer(Layer::Env).map_or(0, |l| l.values.len());
    let (running_url, running_on) = (ctx.config.url.clone(), ctx.config.enabled);
    let out = &mut *ctx.out;
    writeln!(
        out,
        "Settings reloaded: {files} file(s), {env} environment variable(s), {} flag(s)",
        flags.len()
    )?;
    if changes.is_empty() {
        writeln!(out, "No changes since {since}")?;
    } else {
        writeln!(out, "Changed since {since}:")?;
        out.write_all(crate::text::table(&["Key", "Before", "After"], &changes).as_bytes())?;
    }
    let changes_what = "What a reload picks up: edits to the config files, for what starts \
         from now on (shells, `track`, query commands, a new `serve`) and for what these \
         helpers show; the environment is the one this shell started with.";
    let cannot = format!(
        "What it cannot change: this shell keeps sending to {running_url} with tracking {}, \
         as resolved when it started; a running `serve` read its configuration once at start \
         (restart it to apply server.* keys); key=value pairs here are a what-if for these \
         helpers only.",
        if running_on { "on" } else { "off" }
    );
    out.write_all(wrap(changes_what, "", "  ", 80).as_bytes())?;
    out.write_all(wrap(&cannot, "", "  ", 80).as_bytes())?;
    st.snapshot = now;
    st.taken_at = Local::now();
    st.what = "the last reload";
    st.flags = flags;
    drop(st);
    if resolved.problems.is_empty() {
        Ok(())
    } else {
        for p in &resolved.problems {
            out.write_all(wrap(&layers::problem_line(p), "  ✗ ", "      ", 80).as_bytes())?;
        }
        Err(problems_error(
            "reloaded, but the configuration has",
            &resolved.problems,
            "",
        ))
    }
}
