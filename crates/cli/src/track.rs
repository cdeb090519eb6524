//! `session-buddy track -- CMD ARGS…`: runs any program with inherited stdio as a tracked
//! session (start, heartbeats, end with its exit code or signal) and exits as it did; the work is
//! `session_buddy_client::track`.

use anyhow::anyhow;
use clap::Args;
use session_buddy_client::TrackerConfig;
use session_buddy_client::track::{component_of, session_info, track_with};
use session_buddy_events::is_valid_name;

use crate::CmdResult;

#[derive(Args)]
pub struct TrackArgs {
    /// Component name [default: the program's file name; for `python… -m MODULE`, the
    /// module's top-level package].
    #[arg(long)]
    component: Option<String>,
    /// Session type.
    #[arg(long = "type", default_value = "admin_shell")]
    session_type: String,
    /// Record the terminal (output, timing, resizes) as part of the session; also on when
    /// SESSION_BUDDY_RECORD / `client.record` names the component.
    #[arg(long)]
    record: bool,
    /// Record typed input too (never at a password prompt); implies --record.
    #[arg(long)]
    record_input: bool,
    /// The program and its arguments (after `--`).
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    command: Vec<String>,
}

pub fn run(args: TrackArgs) -> CmdResult {
    let component = args
        .component
        .clone()
        .unwrap_or_else(|| component_of(&args.command));
    if !is_valid_name(&component) {
        return Err(anyhow!(
            "--component '{component}' must match ^[a-zA-Z0-9_-]+$ (at most 64 characters)"
        )
        .into());
    }
    if !is_valid_name(&args.session_type) {
        return Err(anyhow!("--type '{}' must match ^[a-zA-Z0-9_-]+$", args.session_type).into());
    }
    let config = TrackerConfig::from_env();
    let record = session_buddy_client::record::RecordOptions::wanted(
        &config,
        &component,
        args.record,
        args.record_input,
    );
    let info = session_info(&args.command, component, args.session_type);
    let code = track_with(config, &args.command, info, record).map_err(anyhow::Error::from)?;
    std::process::exit(code);
}
