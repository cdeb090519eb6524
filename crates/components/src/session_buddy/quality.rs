//! `quality`: the server's quality score per component (`GET /v1/analytics/quality`, the
//! numbers `session_quality_score` exports), with its formula and inputs. Nothing is
//! recomputed here: the failure rule and the formula exist once, in the store.

use std::fmt::Write as _;

use serde::Deserialize;
use serde_json::Value;
use session_buddy_shell::{Context, HelperError, HelperResult};

use super::at_most_args;
use crate::text;

/// One component's score and its inputs, as the server answers them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct Quality {
    pub score: f64,
    pub clean: f64,
    pub commands_ok: f64,
    pub not_abandoned: f64,
    pub sessions: u64,
    pub failed_sessions: u64,
    pub abandoned: u64,
    pub commands: u64,
    pub failed_commands: u64,
}

/// `GET /v1/analytics/quality`, decoded.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct QualityReport {
    pub days: u32,
    pub formula: String,
    pub failure_rule: String,
    pub components: std::collections::BTreeMap<String, Quality>,
}

pub(super) fn quality(ctx: &mut Context<'_>, args: &[String]) -> HelperResult {
    at_most_args(args, 0, "quality")?;
    let answer = ctx.api().get("/v1/analytics/quality", &[])?;
    let report = decode_report(answer)?;
    ctx.out.write_all(render_quality(&report).as_bytes())?;
    Ok(())
}

fn decode_report(answer: Value) -> Result<QualityReport, HelperError> {
    serde_json::from_value(answer).map_err(|e| {
        HelperError::new(format!(
            "unexpected answer from GET /v1/analytics/quality ({e}); is the server older than \
             this shell?"
        ))
    })
}

fn render_quality(report: &QualityReport) -> String {
    let days = report.days;
    if report.components.is_empty() {
        return format!("No sessions started in the last {days} days: nothing to score.\n");
    }
    let mut ranked: Vec<(&String, &Quality)> = report.components.iter().collect();
    // Worst first: that is where the "why" matters.
    ranked.sort_by(|a, b| a.1.score.total_cmp(&b.1.score).then(a.0.cmp(b.0)));
    let pct = |x: f64| format!("{:.1}%", 100.0 * x);
    let rows: Vec<Vec<String>> = ranked
        .iter()
        .map(|(c, q)| {
            vec![
                c.to_string(),
                format!("{:.1}", q.score),
                pct(q.clean),
                pct(q.commands_ok),
                pct(q.not_abandoned),
                q.sessions.to_string(),
                q.commands.to_string(),
            ]
        })
        .collect();
    let mut out = format!(
        "Session quality over the last {days} days (the server's session_quality_score), worst \
         first.\n{}\nwhere {}.\n\n",
        report.formula, report.failure_rule
    );
    out.push_str(&text::table(
        &[
            "Component",
            "Score",
            "Clean",
            "Commands ok",
            "Not abandoned",
            "Sessions",
            "Commands",
        ],
        &rows,
    ));
    out.push_str("\nWhy:\n");
    for (c, q) in ranked {
        let _ = writeln!(
            out,
            "  {c}: {:.1} = 100 × (0.5 × {:.3} + 0.3 × {:.3} + 0.2 × {:.3})",
            q.score, q.clean, q.commands_ok, q.not_abandoned
        );
        let _ = writeln!(
            out,
            "    clean          {} of {} sessions without a failure ({} failed, {} of them abandoned)",
            q.sessions - q.failed_sessions.min(q.sessions),
            q.sessions,
            q.failed_sessions,
            q.abandoned,
        );
        if q.commands == 0 {
            let _ = writeln!(out, "    commands_ok    no commands ran (counts as 1.000)");
        } else {
            let _ = writeln!(
                out,
                "    commands_ok    {} of {} commands succeeded",
                q.commands - q.failed_commands.min(q.commands),
                q.commands
            );
        }
        let _ = writeln!(
            out,
            "    not_abandoned  {} of {} sessions were not abandoned",
            q.sessions - q.abandoned.min(q.sessions),
            q.sessions
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_servers_numbers_are_shown_worst_first_with_the_why() {
        let answer = json!({
            "days": 7,
            "since": "2026-01-30T12:00:00.000000Z",
            "formula": "score = 100 × (0.5 × clean + 0.3 × commands_ok + 0.2 × not_abandoned)",
            "failure_rule": "a session failed when …",
            "components": {
                "akosha": {"score": 85.0, "clean": 0.8, "commands_ok": 0.9, "not_abandoned": 0.9,
                    "sessions": 10, "ended": 9, "failed_sessions": 2, "abandoned": 1,
                    "commands": 100, "failed_commands": 10},
                "oneiric": {"score": 50.0, "clean": 0.0, "commands_ok": 1.0, "not_abandoned": 1.0,
                    "sessions": 1, "ended": 1, "failed_sessions": 1, "abandoned": 0,
                    "commands": 0, "failed_commands": 0}
            }
        });
        let text = render_quality(&decode_report(answer).unwrap());
        assert!(text.find("oneiric").unwrap() < text.find("akosha").unwrap());
        assert!(text.contains("akosha: 85.0 = 100 × (0.5 × 0.800 + 0.3 × 0.900 + 0.2 × 0.900)"));
        assert!(
            text.contains("8 of 10 sessions without a failure (2 failed, 1 of them abandoned)")
        );
        assert!(text.contains("90 of 100 commands succeeded"));
        assert!(text.contains("no commands ran"));
        assert!(text.contains("where a session failed when …"));
        let err = decode_report(json!({"components": 1})).unwrap_err();
        assert!(
            err.message.contains("/v1/analytics/quality"),
            "{}",
            err.message
        );
    }
}
