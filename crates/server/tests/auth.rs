//! Authentication through the real faces: tokens forged the way an attacker would, scopes,
//! the component binding, revocation, rotation, rate limits; REST and MCP.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ClientConfig, JsonObject};
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};
use session_buddy_events::auth::Claims;
use session_buddy_server::ServerOptions;
use session_buddy_server::auth::{AuthOptions, mint_token};

use crate::common::{TestServer, command, session_id_of, start};

pub const SECRET: &str = "k3Jq9vX2mP7wR4tY8zB1nC6dF0gH5jL2-auth-tests";
const PREVIOUS: &str = "p9Lm2Qw8Er4Ty6Ui1Op3As5Df7Gh9Jk0-previous";
const OTHER: &str = "z8Xc7Vb6Nm5Aq4Ws3Ed2Rf1Tg0Yh9Uj8-attacker";
const TS: &str = "2026-03-01T10:00:00Z";

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

pub fn claims(sub: &str, scopes: &[&str], component: Option<&str>) -> Claims {
    Claims {
        sub: sub.into(),
        aud: "session-buddy".into(),
        iss: Some("session-buddy".into()),
        iat: Some(now()),
        exp: now() + 3600,
        jti: uuid::Uuid::new_v4().to_string(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        component: component.map(str::to_string),
        read_components: Vec::new(),
    }
}

pub fn token(scopes: &[&str], component: Option<&str>) -> String {
    mint_token(SECRET, &claims("tests", scopes, component)).unwrap()
}

/// Signs any JSON payload with HS256 (what an attacker holding a key could send).
fn sign_raw(secret: &str, header: Value, payload: Value) -> String {
    use hmac_sha256_for_tests::sign;
    let h = URL_SAFE_NO_PAD.encode(header.to_string());
    let p = URL_SAFE_NO_PAD.encode(payload.to_string());
    let input = format!("{h}.{p}");
    format!("{input}.{}", sign(secret.as_bytes(), input.as_bytes()))
}

/// HMAC-SHA256 through jsonwebtoken's own encoder on raw claims (any JSON).
mod hmac_sha256_for_tests {
    pub fn sign(secret: &[u8], input: &[u8]) -> String {
        let key = jsonwebtoken::EncodingKey::from_secret(secret);
        jsonwebtoken::crypto::sign(input, &key, jsonwebtoken::Algorithm::HS256).unwrap()
    }
}

pub fn secured(extra: impl FnOnce(&mut AuthOptions)) -> ServerOptions {
    let mut auth = AuthOptions {
        secret: Some(SECRET.into()),
        previous_secret: Some(PREVIOUS.into()),
        revocation_refresh: Duration::from_millis(200),
        ..AuthOptions::default()
    };
    extra(&mut auth);
    ServerOptions {
        auth,
        ..ServerOptions::default()
    }
}

async fn get(s: &TestServer, path: &str, auth: Option<&str>) -> (StatusCode, Value) {
    let mut r = s.http.get(format!("{}{path}", s.url));
    if let Some(a) = auth {
        r = r.header("authorization", a);
    }
    let r = r.send().await.unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn post(s: &TestServer, path: &str, auth: Option<&str>, body: &Value) -> (StatusCode, Value) {
    let mut r = s.http.post(format!("{}{path}", s.url)).json(body);
    if let Some(a) = auth {
        r = r.header("authorization", a);
    }
    let r = r.send().await.unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

fn error_of(body: &Value) -> String {
    body["error"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_malformed_tokens_are_401_with_the_reason() {
    let s = TestServer::start_with(secured(|_| {})).await;
    let good = claims("mallory", &["admin"], None);
    let payload = serde_json::to_value(&good).unwrap();
    let hs = json!({"alg": "HS256", "typ": "JWT"});
    let mut no_exp = payload.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    let mut wrong_aud = payload.clone();
    wrong_aud["aud"] = json!("another-service");
    let mut expired = payload.clone();
    expired["exp"] = json!(now() - 3600);
    let mut no_jti = payload.clone();
    no_jti.as_object_mut().unwrap().remove("jti");
    let none_token = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    );
    let hs512 = sign_raw(
        SECRET,
        json!({"alg": "HS512", "typ": "JWT"}),
        payload.clone(),
    );
    // A valid token whose payload was swapped for more scopes.
    let read_only = token(&["read"], None);
    let parts: Vec<&str> = read_only.split('.').collect();
    let escalated = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        parts[2]
    );
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "token is required"),
        ("Basic dXNlcjpwYXNz".into(), "not Bearer"),
        ("Bearer".into(), "Bearer"),
        ("Bearer    ".into(), "Bearer"),
        ("Bearer abc".into(), "3 parts"),
        ("Bearer a.b.c".into(), "malformed token"),
        ("Bearer ...".into(), "malformed token"),
        (bearer(&mint_token(OTHER, &good).unwrap()), "signature"),
        (bearer(&sign_raw(SECRET, hs.clone(), expired)), "expired"),
        (bearer(&none_token), "'none'"),
        (bearer(&hs512), "'HS512'"),
        (bearer(&sign_raw(SECRET, hs.clone(), wrong_aud)), "audience"),
        (bearer(&sign_raw(SECRET, hs.clone(), no_exp)), "'exp'"),
        (bearer(&sign_raw(SECRET, hs.clone(), no_jti)), "'jti'"),
        (bearer(&escalated), "signature"),
        (format!("Bearer {}", "A".repeat(9000)), "longer than"),
    ];
    for (header, expect) in cases {
        let auth = (!header.is_empty()).then_some(header.as_str());
        for path in ["/v1/sessions", "/v1/schemas", "/v1/does-not-exist"] {
            let (status, body) = get(&s, path, auth).await;
            assert_eq!(status, 401, "{header:.60} on {path}: {body}");
            assert!(error_of(&body).contains(expect), "{header:.60}: {body}");
        }
        let (status, body) = post(&s, "/v1/events", auth, &json!([start("akosha", TS)])).await;
        assert_eq!(status, 401, "{header:.60}: {body}");
    }
    // Two Authorization headers: ambiguous, refused.
    let r = s
        .http
        .get(format!("{}/v1/sessions", s.url))
        .header("authorization", bearer(&token(&["read"], None)))
        .header("authorization", bearer(&token(&["read"], None)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    assert!(r.text().await.unwrap().contains("more than one"));
    // Public routes stay public; nothing was stored.
    for path in ["/health", "/healthz", "/readyz", "/metrics"] {
        assert_eq!(get(&s, path, None).await.0, 200, "{path}");
    }
    let admin = bearer(&token(&["admin"], None));
    let (status, body) = get(&s, "/v1/sessions", Some(&admin)).await;
    assert_eq!(status, 200);
    assert_eq!(body["sessions"], json!([]));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_decide_what_a_token_may_do() {
    let s = TestServer::start_with(secured(|_| {})).await;
    let read = bearer(&token(&["read"], None));
    let emit = bearer(&token(&["emit"], None));
    let write = bearer(&token(&["write"], None));
    let both = bearer(&token(&["emit", "read"], None));
    let nothing = bearer(&token(&["delete"], None));
    let ev = start("oneiric", TS);
    let sid = session_id_of(&ev);

    // Scope escalation: a read token cannot post events.
    let (status, body) = post(&s, "/v1/events", Some(&read), &json!([ev])).await;
    assert_eq!(status, 403, "{body}");
    assert!(error_of(&body).contains("'emit' scope"), "{body}");
    let (status, body) = post(&s, "/v1/events", Some(&nothing), &json!([ev])).await;
    assert_eq!(status, 403, "{body}");
    assert!(error_of(&body).contains("no known scope"), "{body}");
    // emit (and the original's `write`) may post, but not read.
    let (status, body) = post(&s, "/v1/events", Some(&write), &json!([ev])).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["status"], "accepted");
    let (status, body) = post(&s, "/v1/events", Some(&emit), &json!([ev])).await;
    assert_eq!(
        (status, body["results"][0]["status"].clone()),
        (StatusCode::OK, json!("duplicate"))
    );
    for path in [
        "/v1/sessions",
        &format!("/v1/sessions/{sid}"),
        "/v1/events",
        "/v1/schemas",
    ] {
        let (status, body) = get(&s, path, Some(&emit)).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert!(error_of(&body).contains("'read' scope"), "{body}");
        assert_eq!(get(&s, path, Some(&both)).await.0, 200, "{path}");
        assert_eq!(get(&s, path, Some(&read)).await.0, 200, "{path}");
    }
    // Other writes need admin.
    let (status, body) = post(&s, "/v1/tokens/revoke", Some(&both), &json!({"jti": "x"})).await;
    assert_eq!(status, 403, "{body}");
    assert!(error_of(&body).contains("'admin' scope"), "{body}");
    let admin = bearer(&token(&["admin"], None));
    let (status, body) = post(&s, "/v1/tokens/revoke", Some(&admin), &json!({"jti": "x"})).await;
    assert_eq!(status, 200, "{body}");
    // Re-redacting stored data too.
    let (status, body) = post(&s, "/v1/admin/redact", Some(&both), &json!({"apply": true})).await;
    assert_eq!(status, 403, "{body}");
    assert!(error_of(&body).contains("'admin' scope"), "{body}");
    let (status, body) = post(
        &s,
        "/v1/admin/redact",
        Some(&admin),
        &json!({"apply": true}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["applied"], true, "{body}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emit_token_bound_to_a_component_writes_only_that_component() {
    let s = TestServer::start_with(secured(|_| {})).await;
    let admin = bearer(&token(&["admin"], None));
    let cj = bearer(&token(&["emit"], Some("crackerjack")));
    let akosha = start("akosha", TS);
    let akosha_id = session_id_of(&akosha);
    let (status, _) = post(&s, "/v1/events", Some(&admin), &json!([akosha])).await;
    assert_eq!(status, 200);
    let before = get(&s, &format!("/v1/sessions/{akosha_id}"), Some(&admin))
        .await
        .1;

    // A crackerjack token writing an akosha start: nothing allowed, 403.
    let (status, body) = post(
        &s,
        "/v1/events",
        Some(&cj),
        &json!([start("akosha", "2026-03-01T10:00:01Z")]),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(error_of(&body).contains("only 'crackerjack'"), "{body}");
    // A command into the stored akosha session: 403.
    let (status, body) = post(
        &s,
        "/v1/events",
        Some(&cj),
        &json!([command(&akosha_id, 1, TS, true)]),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    // A command into an akosha session not stored yet: the id rule decides, 403.
    let pending = "akosha-20260301-100000-abcdef";
    let (status, _) = post(
        &s,
        "/v1/events",
        Some(&cj),
        &json!([command(pending, 1, TS, true)]),
    )
    .await;
    assert_eq!(status, 403);
    // A mixed batch: its own events pass, the others are rejected naming the rule.
    let own = start("crackerjack", TS);
    let own_id = session_id_of(&own);
    let (status, body) = post(
        &s,
        "/v1/events",
        Some(&cj),
        &json!([
            own,
            command(&akosha_id, 2, TS, false),
            command(&own_id, 1, TS, true),
            crate::common::end(&akosha_id, "2026-03-01T11:00:00Z", 0)
        ]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let r = body["results"].as_array().unwrap();
    assert_eq!(r[0]["status"], "accepted");
    assert_eq!(r[1]["status"], "rejected");
    assert!(
        r[1]["error"].as_str().unwrap().starts_with("component: "),
        "{body}"
    );
    assert!(r[1]["error"].as_str().unwrap().contains("akosha"), "{body}");
    assert_eq!(r[2]["status"], "accepted");
    assert_eq!(r[3]["status"], "rejected");
    // The akosha session is untouched; crackerjack's got its command.
    let after = get(&s, &format!("/v1/sessions/{akosha_id}"), Some(&admin))
        .await
        .1;
    assert_eq!(before, after);
    let own_row = get(&s, &format!("/v1/sessions/{own_id}"), Some(&admin))
        .await
        .1;
    assert_eq!(own_row["command_count"], 1);
    // Without read it cannot read even its own sessions.
    assert_eq!(
        get(&s, &format!("/v1/sessions/{own_id}"), Some(&cj))
            .await
            .0,
        403
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_tokens_are_refused_and_the_previous_secret_still_verifies() {
    let s = TestServer::start_with(secured(|_| {})).await;
    let admin = bearer(&token(&["admin"], None));
    let victim_claims = claims("laptop", &["read"], None);
    let victim = bearer(&mint_token(SECRET, &victim_claims).unwrap());
    assert_eq!(get(&s, "/v1/sessions", Some(&victim)).await.0, 200);
    let (status, body) = post(
        &s,
        "/v1/tokens/revoke",
        Some(&admin),
        &json!({"jti": victim_claims.jti, "expires_at": victim_claims.exp}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = get(&s, "/v1/sessions", Some(&victim)).await;
    assert_eq!(status, 401);
    assert!(error_of(&body).contains("revoked"), "{body}");

    // Revoked straight in the database (as `token revoke --db-path` does): picked up by the
    // periodic refresh.
    let other_claims = claims("ci", &["read"], None);
    let other = bearer(&mint_token(SECRET, &other_claims).unwrap());
    assert_eq!(get(&s, "/v1/sessions", Some(&other)).await.0, 200);
    {
        use session_buddy_store::Store as _;
        let store =
            session_buddy_store_sqlite::SqliteStore::open(&s.db_path, Default::default()).unwrap();
        store.revoke_token(&other_claims.jti, None).await.unwrap();
        store.close().await;
    }
    let mut refused = false;
    for _ in 0..50 {
        if get(&s, "/v1/sessions", Some(&other)).await.0 == 401 {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        refused,
        "a revocation written to the database was not picked up"
    );

    // Rotation: a token signed with the previous secret still works.
    let old = bearer(&mint_token(PREVIOUS, &claims("old", &["read"], None)).unwrap());
    assert_eq!(get(&s, "/v1/sessions", Some(&old)).await.0, 200);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_require_read_and_rate_limits_answer_429() {
    let s = TestServer::start_with(secured(|a| {
        a.metrics_require_auth = true;
        a.rate_limit = 2;
    }))
    .await;
    assert_eq!(get(&s, "/metrics", None).await.0, 401);
    assert_eq!(get(&s, "/health", None).await.0, 200);
    let emit = bearer(&token(&["emit"], None));
    assert_eq!(get(&s, "/metrics", Some(&emit)).await.0, 403);
    let read = bearer(&token(&["read"], None));
    // Burst of 2 × 2; the emit token's calls above counted against its own bucket only.
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let r = s
            .http
            .get(format!("{}/metrics", s.url))
            .header("authorization", &read)
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            let retry: u64 = r.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=2).contains(&retry), "{retry}");
            assert!(r.text().await.unwrap().contains("rate limit"));
        }
    }
    assert_eq!(&statuses[..4], &[200, 200, 200, 200], "{statuses:?}");
    assert!(statuses[4..].contains(&429), "{statuses:?}");
    // Another token is not affected.
    assert_eq!(
        get(&s, "/v1/sessions", Some(&bearer(&token(&["read"], None))))
            .await
            .0,
        200
    );
    s.stop().await;
}

type Client = RunningService<rmcp::RoleClient, ClientConfig>;

async fn mcp_client(s: &TestServer, auth: Option<&str>) -> Client {
    let mut config = StreamableHttpClientTransportConfig::with_uri(format!("{}/mcp", s.url));
    if let Some(t) = auth {
        config = config.auth_header(t.to_string());
    }
    let transport = StreamableHttpClientTransport::from_config(config);
    ClientConfig::default().serve(transport).await.unwrap()
}

async fn call(client: &Client, tool: &str, args: Value) -> (bool, Value) {
    let args: JsonObject = serde_json::from_value(args).unwrap();
    let r = client
        .call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(args))
        .await
        .unwrap();
    (
        r.is_error == Some(true),
        r.structured_content.unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_tool_calls_need_a_token_in_the_header_or_the_argument() {
    let s = TestServer::start_with(secured(|_| {})).await;
    // initialize + tools/list need no token.
    let anonymous = mcp_client(&s, None).await;
    assert!(anonymous.list_all_tools().await.unwrap().len() >= 10);
    let ev = start("mahavishnu", TS);
    let sid = session_id_of(&ev);
    for (tool, args) in [
        ("track_session_start", ev.clone()),
        ("list_sessions", json!({})),
        ("health_check", json!({})),
        ("get_session", json!({"session_id": sid})),
        ("no_such_tool", json!({})),
    ] {
        let (is_error, v) = call(&anonymous, tool, args).await;
        assert!(is_error, "{tool}: {v}");
        assert_eq!(v["status"], "error", "{tool}: {v}");
        assert!(
            v["error"].as_str().unwrap().contains("token is required"),
            "{tool}: {v}"
        );
        assert!(v.as_object().unwrap().contains_key("session_id"), "{v}");
    }
    // Bad tokens in the argument answer the error shape, saying why.
    let expired = {
        let mut c = claims("x", &["admin"], None);
        c.exp = now() - 3600;
        mint_token(SECRET, &c).unwrap()
    };
    for (bad, why) in [
        ("garbage".to_string(), "malformed"),
        (
            mint_token(OTHER, &claims("x", &["admin"], None)).unwrap(),
            "signature",
        ),
        (expired, "expired"),
    ] {
        let mut args = ev.clone();
        args["token"] = json!(bad);
        let (is_error, v) = call(&anonymous, "track_session_start", args).await;
        assert!(is_error);
        assert!(v["error"].as_str().unwrap().contains(why), "{v}");
    }
    // The original's clients: the `token` argument.
    let mut args = ev.clone();
    args["token"] = json!(token(&["write"], None));
    let (is_error, v) = call(&anonymous, "track_session_start", args).await;
    assert!(!is_error, "{v}");
    assert_eq!(
        v,
        json!({"session_id": sid, "status": "tracked", "error": null})
    );

    // rmcp's client with auth_header: an emit-only token may track but not read.
    let emit = mcp_client(&s, Some(&token(&["emit"], Some("mahavishnu")))).await;
    let (is_error, v) = call(&emit, "track_command", command(&sid, 1, TS, true)).await;
    assert!(!is_error, "{v}");
    let (is_error, v) = call(&emit, "list_sessions", json!({})).await;
    assert!(is_error);
    assert!(v["error"].as_str().unwrap().contains("'read' scope"), "{v}");
    // Bound to mahavishnu: an akosha start and a command into another component's session
    // are refused naming the rule.
    let (is_error, v) = call(&emit, "track_session_start", start("akosha", TS)).await;
    assert!(is_error);
    assert!(
        v["error"].as_str().unwrap().starts_with("component: "),
        "{v}"
    );
    let (is_error, v) = call(
        &emit,
        "track_session_end",
        crate::common::end("akosha-20260301-100000-abcdef", TS, 0),
    )
    .await;
    assert!(is_error, "{v}");
    assert_eq!(v["session_id"], "akosha-20260301-100000-abcdef");
    assert!(
        v["error"].as_str().unwrap().contains("only 'mahavishnu'"),
        "{v}"
    );

    let reader = mcp_client(&s, Some(&token(&["read"], None))).await;
    let (is_error, v) = call(&reader, "get_session", json!({"session_id": sid})).await;
    assert!(!is_error, "{v}");
    assert_eq!(v["command_count"], 1);
    let (is_error, v) = call(&reader, "track_session_start", start("oneiric", TS)).await;
    assert!(is_error);
    assert!(v["error"].as_str().unwrap().contains("'emit' scope"), "{v}");
    for c in [anonymous, emit, reader] {
        c.cancel().await.unwrap();
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_needs_emit_or_admin_and_abandons_old_history_at_once() {
    let s = TestServer::start_with(secured(|_| {})).await;
    // Months old and never ended: history.
    let old = start("oneiric", TS);
    let sid = session_id_of(&old);
    let import = "/v1/events?import=true";
    let read = bearer(&token(&["read"], None));
    let (status, body) = post(&s, import, Some(&read), &json!([old])).await;
    assert_eq!(status, 403, "{body}");
    assert!(error_of(&body).contains("'emit' scope"), "{body}");
    let akosha_only = bearer(&token(&["emit"], Some("akosha")));
    let (status, body) = post(&s, import, Some(&akosha_only), &json!([old])).await;
    assert_eq!(
        status, 403,
        "a bound token imports its own component only: {body}"
    );
    let (status, body) = post(&s, "/v1/events?import=maybe", Some(&read), &json!([old])).await;
    assert_eq!(status, 403, "auth comes first: {body}");
    let emit = bearer(&token(&["emit"], None));
    let (status, body) = post(&s, "/v1/events?import=maybe", Some(&emit), &json!([old])).await;
    assert_eq!(status, 400, "{body}");
    assert!(error_of(&body).starts_with("import:"), "{body}");
    let (status, body) = post(&s, import, Some(&emit), &json!([old])).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["status"], "accepted", "{body}");
    let admin = bearer(&token(&["admin"], None));
    let (status, v) = get(&s, &format!("/v1/sessions/{sid}"), Some(&admin)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "abandoned", "{v}");
    assert_eq!(v["duration_seconds"], 0.0, "{v}");
    // admin may import too.
    let other = start("akosha", TS);
    let (status, body) = post(&s, import, Some(&admin), &json!([other])).await;
    assert_eq!(status, 200, "{body}");
    let (_, v) = get(
        &s,
        &format!("/v1/sessions/{}", session_id_of(&other)),
        Some(&admin),
    )
    .await;
    assert_eq!(v["status"], "abandoned", "{v}");
    s.stop().await;
}
