//! `session-buddy token create|verify|revoke`.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use session_buddy_token::{Grant, Scope, TokenVerifier, mint_grant, parse_scope, parse_ttl};

use crate::{CmdResult, Failure};

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Make a token signed with SESSION_BUDDY_SECRET; prints only the token.
    Create(CreateArgs),
    /// Check a token against SESSION_BUDDY_SECRET (and SESSION_BUDDY_PREVIOUS_SECRET): prints
    /// its claims, or why it is invalid (exit 1). With --db-path, a revoked token is invalid too.
    Verify {
        /// The token.
        token: String,
        /// Also check the revocations recorded in this SQLite database (the server's).
        #[arg(long)]
        db_path: Option<PathBuf>,
    },
    /// Revoke a token: through the server (POST /v1/tokens/revoke, with an admin token in
    /// SESSION_BUDDY_TOKEN), or straight into the database with --db-path.
    Revoke(RevokeArgs),
}

#[derive(Args)]
pub struct CreateArgs {
    /// Who holds the token, e.g. `crackerjack-ci` (the `sub` claim).
    #[arg(long)]
    subject: String,
    /// What it may do: emit, read or admin (repeatable; `write` is accepted for emit).
    #[arg(long = "scope", required = true, value_parser = parse_scope)]
    scopes: Vec<Scope>,
    /// Bind the token to a component: an emit token may write only that component's
    /// sessions, a read token sees only its components' (repeatable for a read token; an
    /// emit token takes one, an admin token none).
    #[arg(long = "component")]
    components: Vec<String>,
    /// Lifetime, e.g. 1h, 30d; at most 10 years.
    #[arg(long, default_value = "30d", value_parser = parse_ttl)]
    ttl: Duration,
    /// Also write it to $SESSION_BUDDY_HOME/token (mode 600), where the client looks for it.
    #[arg(long)]
    save: bool,
}

#[derive(Args)]
pub struct RevokeArgs {
    /// The token's id (`jti`), or the token itself.
    jti: String,
    /// Write the revocation straight into this SQLite database instead of asking the server
    /// (a running server picks it up within seconds).
    #[arg(long)]
    db_path: Option<PathBuf>,
    /// The server's URL [env SESSION_BUDDY_URL; default: `[client] url` from the config
    /// files, else http://127.0.0.1:<server.port>].
    #[arg(long)]
    url: Option<String>,
}

fn env_secret(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn secret() -> anyhow::Result<String> {
    session_buddy_token::signing_secret(env_secret("SESSION_BUDDY_SECRET").as_deref())
        .map_err(|e| anyhow!("{e}"))
}

pub fn run(command: TokenCommand) -> CmdResult {
    match command {
        TokenCommand::Create(a) => create(a),
        TokenCommand::Verify { token, db_path } => verify(&token, db_path.as_deref()),
        TokenCommand::Revoke(a) => revoke(a),
    }
}

fn create(a: CreateArgs) -> CmdResult {
    let secret = secret()?;
    let grant =
        Grant::new(&a.subject, &a.scopes, &a.components, a.ttl).map_err(|e| anyhow!("{e}"))?;
    let jti = uuid::Uuid::new_v4().to_string();
    let token = mint_grant(&secret, &grant, chrono::Utc::now().timestamp(), &jti)
        .map_err(anyhow::Error::from)?;
    if a.save {
        // Where clients read it: `client.token_file`, default $SESSION_BUDDY_HOME/token.
        let layers =
            session_buddy_config::load(&session_buddy_config::Inputs::from_process(Vec::new()));
        let path = session_buddy_config::ClientSettings::from_resolved(&layers)
            .token_file
            .value;
        save_private(&path, &token)?;
        eprintln!("saved to {} (mode 600)", path.display());
    }
    println!("{token}");
    Ok(())
}

/// Writes `token` readable by its owner only.
fn save_private(path: &std::path::Path, token: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    // An existing file keeps its mode on open: tighten it.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    writeln!(f, "{token}")?;
    Ok(())
}

fn verify(token: &str, db_path: Option<&std::path::Path>) -> CmdResult {
    let secret = secret()?;
    let previous = env_secret("SESSION_BUDDY_PREVIOUS_SECRET");
    let verifier = TokenVerifier::new(&secret, previous.as_deref());
    match verifier.verify(token) {
        Ok(claims) => {
            if let Some(path) = db_path {
                let jti = claims.jti.as_str();
                if revoked_in_db(path)?.iter().any(|r| r == jti) {
                    return Err(anyhow!(
                        "invalid token: token {jti} was revoked (recorded in {})",
                        path.display()
                    )
                    .into());
                }
            }
            let text = serde_json::to_string_pretty(&claims).map_err(anyhow::Error::from)?;
            println!("{text}");
            let left = claims.exp - chrono::Utc::now().timestamp();
            eprintln!(
                "valid: scopes {}{}, expires in {}",
                claims
                    .known_scopes()
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                binding(&claims),
                human(left)
            );
            Ok(())
        }
        Err(e) => Err(anyhow!("invalid token: {e}").into()),
    }
}

/// What the token's component claims bind, as `token verify` says it.
fn binding(claims: &session_buddy_token::Claims) -> String {
    let mut parts = Vec::new();
    if claims.allows(Scope::Emit)
        && let Some(c) = claims.bound_component()
    {
        parts.push(format!("writes bound to component '{c}'"));
    }
    if claims.allows(Scope::Read)
        && let Some(cs) = claims.read_bound_components()
    {
        parts.push(format!("reads bound to components {}", cs.join(", ")));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join("; "))
    }
}

fn human(secs: i64) -> String {
    if secs < 0 {
        return "0s (within the clock-skew leeway)".into();
    }
    session_buddy_text::Span::of(secs).short()
}

fn revoke(a: RevokeArgs) -> CmdResult {
    let arg = a.jti.trim();
    let (jti, expires_at) = if arg.matches('.').count() == 2 {
        let payload = session_buddy_token::inspect(arg)
            .map_err(anyhow::Error::from)?
            .claims;
        let jti = payload
            .get("jti")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("this token has no jti claim, so it cannot be revoked"))?
            .to_string();
        (jti, payload.get("exp").and_then(Value::as_i64))
    } else {
        (arg.to_string(), None)
    };
    if jti.is_empty() || jti.len() > 256 {
        return Err(anyhow!("the jti must be 1 to 256 characters").into());
    }
    match a.db_path {
        Some(path) => revoke_in_db(&path, &jti, expires_at)?,
        None => {
            let api = crate::client::Api::new(a.url.as_deref());
            api.post_json(
                "/v1/tokens/revoke",
                &json!({"jti": jti, "expires_at": expires_at}),
            )?;
        }
    }
    eprintln!("revoked token {jti}");
    Ok(())
}

fn revoke_in_db(path: &std::path::Path, jti: &str, exp: Option<i64>) -> Result<(), Failure> {
    let expires_at = exp.and_then(|s| chrono::DateTime::from_timestamp(s, 0));
    with_db(path, async |store| {
        store
            .revoke_token(jti, expires_at)
            .await
            .map_err(|e| anyhow!("cannot record the revocation: {e}"))
    })
}

/// The ids of the tokens revoked (and not yet expired) in the database at `path`.
fn revoked_in_db(path: &std::path::Path) -> Result<Vec<String>, Failure> {
    with_db(path, async |store| {
        store
            .revoked_tokens(chrono::Utc::now())
            .await
            .map_err(|e| anyhow!("cannot read the revocations: {e}"))
    })
}

/// Runs `f` on the SQLite store at `path` (which must exist), then closes it.
fn with_db<T>(
    path: &std::path::Path,
    f: impl AsyncFnOnce(&dyn session_buddy_store::Store) -> anyhow::Result<T>,
) -> Result<T, Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let out = runtime.block_on(async {
        let store = crate::database::open(
            &crate::serve::Database::Sqlite(path.to_path_buf()),
            crate::database::Create::Nothing,
            crate::database::Tuning::pool(1),
        )
        .await?;
        let result = f(store.as_ref()).await;
        store.close().await;
        result
    })?;
    Ok(out)
}
