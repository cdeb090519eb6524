use std::path::Path;
use std::time::Duration;

use super::*;
use crate::find_key;
use crate::keys::check_value;
use session_buddy_events::parse_duration;

fn write(path: &Path, text: &str) {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(path, text).unwrap();
}

/// A system file, a home with a user file, and a project two levels above the cwd.
struct Fixture {
    _dir: tempfile::TempDir,
    inputs: Inputs,
    system: PathBuf,
    user: PathBuf,
    project: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let system = root.join("etc/config.toml");
    let home = root.join("home/.session-buddy");
    let user = home.join("config.toml");
    let project = root.join("proj/.session-buddy.toml");
    let cwd = root.join("proj/src/deep");
    let no_system = root.join("no-etc/config.toml");
    std::fs::create_dir_all(&cwd).unwrap();
    let env = BTreeMap::from([
        (
            "SESSION_BUDDY_SYSTEM_CONFIG".to_string(),
            system.display().to_string(),
        ),
        ("SESSION_BUDDY_HOME".to_string(), home.display().to_string()),
        ("PATH".to_string(), "/usr/bin".to_string()),
    ]);
    Fixture {
        _dir: dir,
        inputs: Inputs {
            env,
            cwd,
            flags: Vec::new(),
            config_file: None,
            system_file: no_system,
        },
        system,
        user,
        project,
    }
}

fn effective(r: &Resolved, key: &str) -> (String, Layer) {
    let (v, s) = r.effective(key).unwrap();
    (v.text.clone(), s.layer)
}

#[test]
fn each_layer_overrides_the_ones_below_and_says_so() {
    let mut f = fixture();
    write(
        &f.system,
        "[server]\nport = 1001\nhost = \"10.0.0.1\"\nsync = \"full\"\nsession_ttl = \"5m\"\n",
    );
    write(
        &f.user,
        "[server]\nport = 1002\nhost = \"10.0.0.2\"\nsync = \"normal\"\n",
    );
    write(
        &f.project,
        "[server]\nport = 1003\nhost = \"10.0.0.3\"\n[client]\nurl = \"http://tracker:1\"\n",
    );
    f.inputs
        .env
        .insert("SESSION_BUDDY_PORT".into(), "1004".into());
    f.inputs.flags = parse_flags(&["port=1005".to_string()]).unwrap();

    let r = load(&f.inputs);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(effective(&r, "server.port"), ("1005".into(), Layer::Flag));
    assert_eq!(
        effective(&r, "server.host"),
        ("10.0.0.3".into(), Layer::Project)
    );
    assert_eq!(effective(&r, "server.sync"), ("normal".into(), Layer::User));
    assert_eq!(
        effective(&r, "server.session_ttl"),
        ("5m".into(), Layer::System)
    );
    assert_eq!(
        effective(&r, "server.legacy_session_ttl"),
        ("24h".into(), Layer::Default)
    );
    // A project file may not say where events go: derived from the server's settings instead,
    // and from no project key (its host is `serve`'s in that checkout, not the clients').
    assert_eq!(
        effective(&r, "client.url"),
        ("http://10.0.0.2:1005".into(), Layer::Default)
    );
    assert!(
        r.warnings
            .iter()
            .any(|w| w.layer == Layer::Project && w.message.starts_with("client.url is ignored")),
        "{:?}",
        r.warnings
    );
    // Every layer keeps its own value, for the provenance table.
    let port_of = |layer| r.layer(layer).unwrap().values["server.port"].text.clone();
    assert_eq!(
        Layer::ALL.map(port_of),
        ["8678", "1001", "1002", "1003", "1004", "1005"].map(String::from)
    );
    assert_eq!(r.effective("port").map(|(_, s)| s.to_string()), None);
    assert_eq!(
        r.effective(find_key("port").unwrap().name)
            .unwrap()
            .1
            .to_string(),
        "flag port=1005"
    );

    f.inputs.flags.clear();
    let r = load(&f.inputs);
    assert_eq!(effective(&r, "server.port"), ("1004".into(), Layer::Env));
    assert_eq!(
        r.effective("server.port").unwrap().1.to_string(),
        "env SESSION_BUDDY_PORT=1004"
    );
}

#[test]
fn the_project_file_is_found_upward_and_missing_files_are_absent() {
    let f = fixture();
    let r = load(&f.inputs);
    assert!(r.problems.is_empty());
    for layer in [Layer::System, Layer::User, Layer::Project] {
        assert_eq!(
            r.layer(layer).unwrap().state,
            FileState::Absent,
            "{layer:?}"
        );
    }
    assert_eq!(
        effective(&r, "server.port"),
        ("8678".into(), Layer::Default)
    );
    let home_db = f.user.with_file_name("sessions.db");
    assert_eq!(
        effective(&r, "server.db_path").0,
        home_db.display().to_string()
    );

    write(&f.project, "[server]\nallowed_hosts = [\"a\", \"b\"]\n");
    let r = load(&f.inputs);
    let project = r.layer(Layer::Project).unwrap();
    assert_eq!(project.state, FileState::Loaded);
    assert_eq!(project.origin, f.project.display().to_string());
    assert_eq!(
        effective(&r, "server.allowed_hosts"),
        ("a,b".into(), Layer::Project)
    );
}

#[test]
fn bad_files_report_unknown_keys_types_and_values() {
    let mut f = fixture();
    write(
        &f.user,
        "[server]\nprot = 1\nport = 70000\nsync = \"fast\"\nsession_ttl = 600\nallowed_hosts = \"x\"\n\
         legacy_session_ttl = \"3 weeks\"\n[client]\nurl = \"ftp://x\"\ntracking = \"maybe\"\n[extra]\n",
    );
    write(&f.system, "[server\nport = 1\n");
    f.inputs
        .env
        .insert("SESSION_BUDDY_PORT".into(), "-1".into());
    f.inputs.env.insert("SESSION_BUDDY_PROT".into(), "1".into());
    // Variables the product reads that are not configuration keys are no typos.
    for known in [
        "SESSION_BUDDY_CA_CERT",
        "SESSION_BUDDY_TLS_CERT",
        "SESSION_BUDDY_PREVIOUS_SECRET",
    ] {
        f.inputs.env.insert(known.into(), "x".into());
    }
    let r = load(&f.inputs);
    let messages: Vec<&str> = r.problems.iter().map(|p| p.message.as_str()).collect();
    let has = |needle: &str| {
        assert!(
            messages.iter().any(|m| m.contains(needle)),
            "no problem mentions {needle:?}: {messages:#?}"
        )
    };
    has("not valid TOML (line 1)");
    has("unknown key 'server.prot'");
    has("server.port: must be a port number from 0 to 65535, got '70000'");
    has("server.sync: must be normal or full, got 'fast'");
    has("server.session_ttl: must be a string with a unit");
    has("server.allowed_hosts: must be a list of strings");
    has("server.legacy_session_ttl: '3 weeks' has an unknown unit");
    has("client.url: must be an http:// or https:// URL");
    has("client.tracking: must be on or off");
    has("unknown key 'extra'");
    assert!(
        r.problems
            .iter()
            .any(|p| p.layer == Layer::Env && p.message.contains("'-1'"))
    );
    assert_eq!(messages.len(), 11, "{messages:#?}");
    assert!(matches!(
        r.layer(Layer::System).unwrap().state,
        FileState::Broken(_)
    ));
    assert_eq!(r.warnings.len(), 1);
    assert_eq!(r.warnings[0].origin, "SESSION_BUDDY_PROT");
    // An invalid value still shows where it was set, marked invalid.
    let (v, source) = r.effective("server.sync").unwrap();
    assert_eq!(
        (v.text.as_str(), v.valid, source.layer),
        ("fast", false, Layer::User)
    );
}

#[test]
fn a_valid_file_has_no_problems() {
    let f = fixture();
    write(
        &f.user,
        "[server]\nhost = \"0.0.0.0\"\nport = 0\ndb_path = \"/var/db.sqlite\"\n\
         database_url = \"sqlite:///x.db\"\nsync = \"full\"\nallowed_hosts = []\n\
         session_ttl = \"90s\"\nlegacy_session_ttl = \"2d\"\n[client]\nurl = \"https://t.example/\"\ntracking = false\n",
    );
    let r = load(&f.inputs);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(
        effective(&r, "client.tracking"),
        ("off".into(), Layer::User)
    );
}

#[test]
fn flags_must_be_known_key_value_pairs() {
    assert!(
        parse_flags(&["port".into()])
            .unwrap_err()
            .contains("key=value")
    );
    assert!(
        parse_flags(&["nope=1".into()])
            .unwrap_err()
            .contains("unknown key 'nope'")
    );
    let flags = parse_flags(&["server.sync=full".into(), "url=http://x".into()]).unwrap();
    assert_eq!(flags[0].key.name, "server.sync");
    assert_eq!(flags[1].key.name, "client.url");
}

#[test]
fn durations_parse_like_the_server() {
    assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
    assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86400)));
    assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
    assert!(parse_duration("10 parsecs").is_err());
    assert!(parse_duration("").is_err());
    let key = find_key("session_ttl").unwrap();
    assert!(
        check_value(key, "500ms")
            .unwrap_err()
            .contains("at least 1s")
    );
}

#[test]
fn a_project_file_cannot_say_where_events_go_nor_switch_tracking_off() {
    let f = fixture();
    write(&f.user, "[client]\nurl = \"http://user:1\"\n");
    write(
        &f.project,
        "[server]\nsync = \"full\"\n[client]\nurl = \"http://evil:1\"\ntoken_file = \"/tmp/t\"\n\
         ca_cert = \"/tmp/ca.pem\"\ntracking = false\n",
    );
    let r = load(&f.inputs);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(
        effective(&r, "client.url"),
        ("http://user:1".into(), Layer::User)
    );
    assert_eq!(
        effective(&r, "client.tracking"),
        ("on".into(), Layer::Default)
    );
    assert_eq!(effective(&r, "client.token_file").1, Layer::Default);
    assert!(r.effective("client.ca_cert").is_none());
    assert_eq!(
        effective(&r, "server.sync"),
        ("full".into(), Layer::Project)
    );
    let ignored: Vec<&str> = r
        .warnings
        .iter()
        .filter(|w| w.layer == Layer::Project && w.origin == f.project.display().to_string())
        .map(|w| w.message.as_str())
        .collect();
    assert_eq!(ignored.len(), 4, "{ignored:#?}");
    assert!(ignored.iter().any(|m| {
        m.starts_with("client.tracking is ignored: a project file may not set tracking off")
    }));
    // Tracking on in a project file is no risk: it is kept.
    write(&f.project, "[client]\ntracking = true\n");
    assert_eq!(
        effective(&load(&f.inputs), "client.tracking"),
        ("on".into(), Layer::Project)
    );
}

#[test]
fn a_project_files_server_keys_do_not_move_the_clients() {
    let f = fixture();
    write(&f.user, "[server]\nport = 9100\n");
    write(
        &f.project,
        "[server]\nhost = \"evil.example\"\nport = 4444\ntls_cert = \"/tmp/c.pem\"\n\
         [client]\nbuffer_max_size = 1\nbuffer_max_age_days = 1\n",
    );
    let r = load(&f.inputs);
    // `serve` in this checkout uses the project's port ...
    assert_eq!(
        effective(&r, "server.port"),
        ("4444".into(), Layer::Project)
    );
    // ... but the clients' URL comes from the layers a checkout cannot write.
    let (url, source) = r.valid("client.url").unwrap();
    assert_eq!(url, "http://127.0.0.1:9100", "{source}");
    assert!(source.to_string().contains("server.port"), "{source}");
    // Nor may it shrink the buffer that holds events while the server is away.
    assert_eq!(effective(&r, "client.buffer_max_size").1, Layer::Default);
    assert_eq!(
        effective(&r, "client.buffer_max_age_days").1,
        Layer::Default
    );
    let ignored = r
        .warnings
        .iter()
        .filter(|w| w.layer == Layer::Project && w.message.contains("client.buffer_max"))
        .count();
    assert_eq!(ignored, 2, "{:#?}", r.warnings);
}

#[test]
fn a_system_pin_beats_user_file_env_and_flags() {
    let mut f = fixture();
    write(
        &f.system,
        "pin = [\"client.tracking\"]\n[client]\ntracking = true\n",
    );
    write(&f.user, "[client]\ntracking = false\n");
    f.inputs
        .env
        .insert("SESSION_BUDDY_TRACKING".into(), "off".into());
    f.inputs
        .env
        .insert("ONEIRIC_EVENT_BUFFER_ENABLED".into(), "false".into());
    f.inputs.flags = parse_flags(&["tracking=off".to_string()]).unwrap();
    let r = load(&f.inputs);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    let (v, source) = r.effective("client.tracking").unwrap();
    assert_eq!(
        (v.text.as_str(), source.layer, source.pinned),
        ("on", Layer::System, true)
    );
    assert_eq!(
        source.to_string(),
        format!("system {}, pinned", f.system.display())
    );
    let overruled = r
        .warnings
        .iter()
        .filter(|w| w.message.contains("is pinned to on"))
        .count();
    assert_eq!(overruled, 3, "{:?}", r.warnings);
    let c = crate::ClientSettings::from_resolved(&r);
    assert!(c.tracking.value);
    assert!(
        c.tracking_pin()
            .unwrap()
            .contains("pinned by the system file")
    );

    // A pin without a value pins the default; a pin elsewhere is ignored, and said so.
    write(&f.system, "pin = [\"client.tracking\"]\n");
    write(&f.user, "pin = [\"client.tracking\"]\n");
    let r = load(&f.inputs);
    assert_eq!(
        effective(&r, "client.tracking"),
        ("on".into(), Layer::System)
    );
    assert!(
        r.warnings
            .iter()
            .any(|w| w.layer == Layer::User && w.message.contains("only the system file"))
    );
    write(&f.system, "pin = [\"server.port\"]\n");
    assert!(
        load(&f.inputs).problems[0]
            .message
            .contains("'server.port' cannot be pinned")
    );
}

#[test]
fn the_system_file_can_be_renamed_only_while_the_operators_does_not_exist() {
    let mut f = fixture();
    write(&f.system, "[server]\nport = 1001\n");
    assert_eq!(
        effective(&load(&f.inputs), "server.port"),
        ("1001".into(), Layer::System)
    );
    let operators = f.user.with_file_name("etc-config.toml");
    write(&operators, "[server]\nport = 2002\n");
    f.inputs.system_file = operators;
    let r = load(&f.inputs);
    assert_eq!(effective(&r, "server.port"), ("2002".into(), Layer::System));
    assert!(
        r.warnings
            .iter()
            .any(|w| w.origin == "SESSION_BUDDY_SYSTEM_CONFIG")
    );
}

#[test]
fn clients_find_the_server_from_url_then_port() {
    let mut f = fixture();
    let url = |f: &Fixture| crate::ClientSettings::from_resolved(&load(&f.inputs)).url;
    assert_eq!(url(&f).value, "http://127.0.0.1:8678");
    f.inputs
        .env
        .insert("SESSION_BUDDY_PORT".into(), "18678".into());
    let u = url(&f);
    assert_eq!(u.value, "http://127.0.0.1:18678");
    assert_eq!(
        u.source.to_string(),
        "default from server.port (env SESSION_BUDDY_PORT=18678)"
    );
    write(
        &f.user,
        "[server]\nhost = \"0.0.0.0\"\ntls_cert = \"/c.pem\"\n",
    );
    assert_eq!(url(&f).value, "https://127.0.0.1:18678");
    write(
        &f.user,
        "[server]\nhost = \"::\"\n[client]\nurl = \"http://box:1/\"\n",
    );
    assert_eq!(url(&f).value, "http://box:1");
    f.inputs
        .env
        .insert("SESSION_BUDDY_URL".into(), "http://env:2".into());
    assert_eq!(url(&f).value, "http://env:2");
    assert_eq!(crate::derived_url("::", "1", false), "http://[::1]:1");
    assert_eq!(
        crate::derived_url("fe80::1", "1", false),
        "http://[fe80::1]:1"
    );
}

#[test]
fn client_settings_take_the_buffer_bounds_and_say_why_tracking_is_off() {
    let mut f = fixture();
    write(
        &f.user,
        "[client]\nbuffer_max_size = 50\nbuffer_max_age_days = 0.5\n",
    );
    f.inputs
        .env
        .insert("ONEIRIC_EVENT_BUFFER_MAX_SIZE".into(), "nope".into());
    f.inputs
        .env
        .insert("ONEIRIC_EVENT_BUFFER_ENABLED".into(), "false".into());
    let r = load(&f.inputs);
    let c = crate::ClientSettings::from_resolved(&r);
    // The invalid variable is reported and skipped for the file below it.
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert_eq!(c.buffer_max_size.value, 50);
    assert_eq!(c.buffer_max_age.value, Duration::from_secs(43_200));
    assert_eq!(
        c.disabled_reason().as_deref(),
        Some("ONEIRIC_EVENT_BUFFER_ENABLED=false")
    );
    f.inputs.env.remove("ONEIRIC_EVENT_BUFFER_ENABLED");
    write(&f.user, "[client]\ntracking = false\n");
    let c = crate::ClientSettings::from_resolved(&load(&f.inputs));
    assert!(
        c.disabled_reason()
            .unwrap()
            .starts_with("client.tracking = off in the user file")
    );
}
