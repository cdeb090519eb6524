//! `bench record`: the recorder's throughput. A file of text goes through `cat` in a
//! pseudo-terminal whose reader drains as fast as it can, once as `cat FILE` and once as
//! `session-buddy track --record -- cat FILE` (which runs `cat` in a pseudo-terminal of its
//! own, records it and relays it), alternating runs so that drift affects both alike.

use std::io::Read;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use serde_json::json;

/// What `record` runs.
#[derive(Debug, Clone)]
pub struct RecordOptions {
    /// The `session-buddy` program whose `track --record` is timed.
    pub exe: PathBuf,
    /// Where the recording is delivered; `None`: nowhere (a port nobody listens on), so the
    /// chunks stay in the local buffer.
    pub url: Option<String>,
    /// Megabytes of text to show.
    pub megabytes: u64,
    /// Runs per configuration.
    pub runs: usize,
    pub json: bool,
}

/// Runs `argv` in a new pseudo-terminal and reads it to the end; seconds and bytes read.
fn drained(argv: &[String], env: &[(&str, String)]) -> anyhow::Result<(f64, u64)> {
    let (pty, pts) = pty_process::blocking::open().context("cannot open a pseudo-terminal")?;
    pty.resize(pty_process::Size::new(50, 200))
        .context("cannot size the pseudo-terminal")?;
    let mut cmd = pty_process::blocking::Command::new(&argv[0]).args(&argv[1..]);
    for (k, v) in env {
        cmd = cmd.env(k, v);
    }
    let started = Instant::now();
    let mut child = cmd.spawn(pts).context("cannot start the program")?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    let mut reader = &pty;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => total += n as u64,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // EIO: the program and everything it started have closed the terminal.
            Err(_) => break,
        }
    }
    let status = child.wait()?;
    let secs = started.elapsed().as_secs_f64();
    if !status.success() {
        bail!("{} ended with {status}", argv.join(" "));
    }
    Ok((secs, total))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub fn record(o: RecordOptions) -> anyhow::Result<()> {
    if o.runs == 0 || o.runs > 100 {
        bail!("--runs must be from 1 to 100");
    }
    if o.megabytes == 0 || o.megabytes > 10_000 {
        bail!("--megabytes must be from 1 to 10000");
    }
    let dir = tempfile_dir()?;
    let file = dir.join("text");
    {
        use std::io::Write;
        let mut w = std::io::BufWriter::new(std::fs::File::create(&file)?);
        let line = "session-buddy records what a terminal shows: 0123456789 abcdefghij ÄÖÜ ✓\n";
        let mut written = 0u64;
        while written < o.megabytes * 1_000_000 {
            w.write_all(line.as_bytes())?;
            written += line.len() as u64;
        }
        w.flush()?;
    }
    let size = std::fs::metadata(&file)?.len();
    let file_s = file.to_string_lossy().into_owned();
    let url = match &o.url {
        Some(u) => u.clone(),
        None => {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            format!("http://{}", l.local_addr()?)
        }
    };
    let plain = vec!["cat".to_string(), file_s.clone()];
    let tracked = vec![
        o.exe.to_string_lossy().into_owned(),
        "track".into(),
        "--record".into(),
        "--component".into(),
        "benchrecord".into(),
        "--".into(),
        "cat".into(),
        file_s,
    ];
    let (mut untracked_s, mut tracked_s) = (Vec::new(), Vec::new());
    let mut shown = 0;
    for run in 0..o.runs {
        let home = dir.join(format!("home{run}"));
        let env = [
            ("SESSION_BUDDY_HOME", home.to_string_lossy().into_owned()),
            ("SESSION_BUDDY_URL", url.clone()),
        ];
        let (s, n) = drained(&plain, &[])?;
        untracked_s.push(s);
        shown = shown.max(n);
        let (s, _) = drained(&tracked, &env)?;
        tracked_s.push(s);
        let _ = std::fs::remove_dir_all(&home);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let (u, t) = (median(&mut untracked_s), median(&mut tracked_s));
    let mb = size as f64 / 1e6;
    let result = json!({
        "megabytes": mb,
        "runs": o.runs,
        "delivered_to": o.url,
        "untracked_seconds": u,
        "tracked_seconds": t,
        "untracked_mb_per_s": mb / u,
        "tracked_mb_per_s": mb / t,
        "ratio": u / t,
        "bytes_read": shown,
    });
    if o.json {
        println!("{result}");
    } else {
        println!(
            "cat of {mb:.0} MB in a pseudo-terminal, median of {} runs: untracked {u:.2} s ({:.0} MB/s), \
             track --record {t:.2} s ({:.0} MB/s): {:.2} of untracked throughput",
            o.runs,
            mb / u,
            mb / t,
            u / t
        );
    }
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir =
        std::env::temp_dir().join(format!("session-buddy-bench-record-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}
