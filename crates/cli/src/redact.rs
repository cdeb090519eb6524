//! `redact [--apply]`: re-applies the current redaction rules to what the server has stored
//! (`POST /v1/admin/redact`, an `admin` token on a secured server), either backend.

use anyhow::anyhow;
use clap::Args;
use serde_json::json;
use session_buddy_store::Redaction;

use crate::client::Api;
use crate::{CmdResult, Format, ServerArgs};

#[derive(Args)]
pub struct RedactArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Rewrite the stored events; without it, a dry run that only counts them.
    #[arg(long)]
    apply: bool,
}

pub fn run(args: RedactArgs) -> CmdResult {
    let api = Api::new(args.server.url.as_deref());
    let answer = api.post_json("/v1/admin/redact", &json!({ "apply": args.apply }))?;
    let count = |k: &str| {
        answer[k]
            .as_u64()
            .ok_or_else(|| anyhow!("unexpected answer from the server: no '{k}' in {answer}"))
    };
    let report = Redaction {
        examined: count("examined")?,
        changed: count("changed")?,
        applied: answer["applied"].as_bool().unwrap_or(args.apply),
    };
    match args.server.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&answer).map_err(anyhow::Error::from)?
        ),
        Format::Csv => print!(
            "{}",
            crate::output::csv(
                &["examined", "changed", "applied"],
                &[vec![
                    report.examined.to_string(),
                    report.changed.to_string(),
                    report.applied.to_string(),
                ]],
            )
        ),
        Format::Table => println!("{}", summary(&report)),
    }
    Ok(())
}

fn summary(r: &Redaction) -> String {
    let events = |n: u64| if n == 1 { "event" } else { "events" };
    if r.applied {
        format!(
            "redacted {} {} (of {} command {} stored)",
            r.changed,
            events(r.changed),
            r.examined,
            events(r.examined)
        )
    } else if r.changed == 0 {
        format!(
            "nothing to redact: the current rules change none of the {} command {} stored",
            r.examined,
            events(r.examined)
        )
    } else {
        format!(
            "{} {} would change (of {} command {} stored); run `session-buddy redact --apply` to rewrite them",
            r.changed,
            events(r.changed),
            r.examined,
            events(r.examined)
        )
    }
}
