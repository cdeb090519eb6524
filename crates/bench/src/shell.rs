//! `bench shell`: how long a whole shell run takes with the server up, down or
//! hanging, and tracked versus untracked. Each configuration runs the same `-c` command in a
//! fresh process, alternating configurations so drift affects them alike.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;

/// What `shell` runs.
#[derive(Debug, Clone)]
pub struct ShellOptions {
    /// The `session-buddy` program whose `shell` is timed.
    pub exe: PathBuf,
    /// A running server (loopback) for the "server up" runs.
    pub url: String,
    /// Runs per configuration.
    pub runs: usize,
    /// The shell and the `-c` commands to run.
    pub component: String,
    pub command: String,
    /// Print the result as JSON.
    pub json: bool,
}

struct Config {
    name: &'static str,
    url: String,
    tracking: bool,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

pub fn shell(a: ShellOptions) -> anyhow::Result<()> {
    if a.runs == 0 || a.runs > 1000 {
        bail!("--runs must be from 1 to 1000");
    }
    let exe = &a.exe;
    // A server that accepts connections and never answers: a listener nobody reads from.
    let hanging = TcpListener::bind("127.0.0.1:0")?;
    let hanging_url = format!("http://{}", hanging.local_addr()?);
    // Nothing listens here.
    let down_url = {
        let l = TcpListener::bind("127.0.0.1:0")?;
        format!("http://{}", l.local_addr()?)
    };
    let configs = [
        Config {
            name: "up",
            url: a.url.clone(),
            tracking: true,
        },
        Config {
            name: "down",
            url: down_url,
            tracking: true,
        },
        Config {
            name: "hanging",
            url: hanging_url,
            tracking: true,
        },
        Config {
            name: "untracked",
            url: a.url.clone(),
            tracking: false,
        },
    ];
    let homes: Vec<PathBuf> = configs
        .iter()
        .map(|c| {
            std::env::temp_dir().join(format!("sb-bench-shell-{}-{}", std::process::id(), c.name))
        })
        .collect();
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); configs.len()];
    for round in 0..a.runs + 1 {
        for (i, c) in configs.iter().enumerate() {
            let mut cmd = Command::new(exe);
            cmd.args(["shell", &a.component, "-c", &a.command])
                .env("SESSION_BUDDY_HOME", &homes[i])
                .env("SESSION_BUDDY_URL", &c.url)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if !c.tracking {
                cmd.env("SESSION_BUDDY_TRACKING", "off");
            } else {
                cmd.env_remove("SESSION_BUDDY_TRACKING");
            }
            let t = Instant::now();
            let status = cmd.status().context("cannot run the shell")?;
            let secs = t.elapsed().as_secs_f64();
            if !status.success() {
                bail!("the shell failed in configuration '{}' ({status})", c.name);
            }
            // The first round warms caches and creates the buffers; it is not counted.
            if round > 0 {
                times[i].push(secs * 1000.0);
            }
        }
    }
    drop(hanging);
    // Let detached senders of the down/hanging runs give up on their own; remove the homes.
    std::thread::sleep(Duration::from_millis(100));
    for h in &homes {
        let _ = std::fs::remove_dir_all(h);
    }
    let medians: Vec<f64> = times.iter_mut().map(|t| median(t)).collect();
    let up = medians[0].max(f64::MIN_POSITIVE);
    let untracked = medians[3].max(f64::MIN_POSITIVE);
    let summary = json!({
        "bench": "shell",
        "runs": a.runs,
        "command": format!("shell {} -c \"{}\"", a.component, a.command),
        "median_ms": {"up": medians[0], "down": medians[1], "hanging": medians[2], "untracked": medians[3]},
        "ratio_down_over_up": medians[1] / up,
        "ratio_hanging_over_up": medians[2] / up,
        "ratio_tracked_over_untracked": medians[0] / untracked,
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!(
            "bench shell  {} runs of `shell {} -c \"{}\"`",
            a.runs, a.component, a.command
        );
        for (c, m) in configs.iter().zip(&medians) {
            println!("  {:<10} median {m:7.2} ms", c.name);
        }
        println!(
            "  down/up {:.3}, hanging/up {:.3}, tracked/untracked {:.3}",
            medians[1] / up,
            medians[2] / up,
            medians[0] / untracked
        );
    }
    Ok(())
}
