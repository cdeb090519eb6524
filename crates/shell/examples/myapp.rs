//! Any Rust program gets a tracked admin shell as a subcommand in a few lines:
//!
//! ```sh
//! cargo run -p session-buddy-shell --example myapp -- shell
//! cargo run -p session-buddy-shell --example myapp -- shell -c "greet Ada; count 3"
//! ```

use clap::{Parser, Subcommand};
use session_buddy_shell::{Helper, HelperError, ShellArgs, ShellSpec};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The tracked admin shell.
    Shell(ShellArgs),
}

fn main() {
    let Command::Shell(args) = Cli::parse().command;
    let spec = ShellSpec {
        component: "myapp".into(),
        display_name: "MyApp".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        tagline: "An example of a tracked admin shell".into(),
        role: "Example".into(),
        shell_type: "MyAppShell".into(),
        help_notes: String::new(),
        helpers: vec![
            Helper::new("greet", "say hello", |ctx, args| {
                let name = args.first().map(String::as_str).unwrap_or("world");
                writeln!(ctx.out, "hello, {name}")?;
                Ok(())
            })
            .usage("[name]"),
            Helper::new("count", "count to N", |ctx, args| {
                let n: u32 = args
                    .first()
                    .ok_or("count needs a number")?
                    .parse()
                    .map_err(|_| HelperError::new("not a number"))?;
                for i in 1..=n {
                    writeln!(ctx.out, "{i}")?;
                }
                Ok(())
            })
            .usage("N"),
        ],
    };
    std::process::exit(spec.run_with(&args));
}
