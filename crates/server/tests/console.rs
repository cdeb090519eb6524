//! The web console without a browser: every page with real data over a real socket, escaping,
//! the security headers, the login flow and what a console cookie may not do.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use session_buddy_server::ServerOptions;
use session_buddy_server::auth::{AuthOptions, mint_token};

use crate::auth::{SECRET, claims, token};
use crate::common::{TestServer, command, end, session_id_of, start};

const EVIL: &str = "<script>alert('x')</script>";

/// An `application/x-www-form-urlencoded` body.
fn form(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn page(server: &TestServer, path: &str) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let r = server
        .http
        .get(format!("{}{path}", server.url))
        .send()
        .await
        .unwrap();
    let (status, headers) = (r.status(), r.headers().clone());
    (status, headers, r.text().await.unwrap())
}

/// Two sessions (one with `<script>` in its metadata and a failed command, still active; one
/// ended), returning their ids.
async fn seed(server: &TestServer) -> (String, String) {
    let now = chrono::Utc::now();
    let ts = |secs: i64| {
        (now - chrono::TimeDelta::seconds(secs))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let mut a = start("oneiric", &ts(120));
    a["metadata"] = json!({"note": EVIL});
    let a_id = session_id_of(&a);
    let b = start("akosha", &ts(100));
    let b_id = session_id_of(&b);
    let mut failed = command(&a_id, 1, &ts(90), false);
    failed["command"] = json!("deploy");
    let results = server
        .post_events(&[
            a,
            b,
            failed,
            command(&a_id, 2, &ts(80), true),
            json!({"event_id": uuid::Uuid::new_v4().to_string(), "event_type": "heartbeat",
                   "session_id": a_id, "timestamp": ts(70)}),
            json!({"event_id": uuid::Uuid::new_v4().to_string(), "event_type": "heartbeat",
                   "session_id": a_id, "timestamp": ts(60)}),
            end(&b_id, &ts(50), 0),
        ])
        .await;
    for r in &results {
        assert_eq!(r["status"], "accepted", "{r}");
    }
    (a_id, b_id)
}

#[tokio::test]
async fn every_page_renders_real_data_escaped_and_under_the_csp() {
    let server = TestServer::start().await;
    let (active, ended) = seed(&server).await;

    let (status, headers, live) = page(&server, "/").await;
    assert_eq!(status, 200);
    assert!(
        headers[CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    assert!(live.contains("<table id=\"live\""), "{live}");
    assert!(live.contains(&format!("<tr data-session=\"{active}\"")));
    assert!(
        !live.contains(&format!("data-session=\"{ended}\"")),
        "an ended session is not live"
    );
    assert!(live.contains("data-position=\""));
    assert!(
        !live.contains("<script>") && !live.contains(" style="),
        "no inline script or style"
    );

    let (status, _, list) = page(&server, "/sessions?component=akosha").await;
    assert_eq!(status, 200);
    assert!(list.contains(&format!("data-session=\"{ended}\"")));
    assert!(!list.contains(&format!("data-session=\"{active}\"")));
    assert!(
        list.contains("id=\"download-csv\" href=\"/sessions.csv?component=akosha\""),
        "{list}"
    );
    // The CLI's keywords in the time filters, and the text search.
    let (status, _, list) = page(&server, "/sessions?after=today&q=ONEIR").await;
    assert_eq!(status, 200);
    assert!(list.contains(&format!("data-session=\"{active}\"")));
    assert!(!list.contains(&format!("data-session=\"{ended}\"")));
    let (status, _, bad) = page(&server, "/sessions?after=soon").await;
    assert_eq!(status, 400);
    assert!(bad.contains("class=\"error\""));

    let (status, _, one) = page(&server, &format!("/sessions/{active}")).await;
    assert_eq!(status, 200);
    assert!(one.contains("<dl id=\"record\">"));
    assert!(one.contains("<li class=\"event command failed\""), "{one}");
    assert!(one.contains("<li class=\"heartbeats\">"));
    assert!(one.contains("2 heartbeats"));
    assert!(
        one.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"),
        "metadata shows as text"
    );
    assert!(!one.contains(EVIL));
    assert!(!one.contains("abc123"), "arguments are shown as redacted");
    let (_, _, other) = page(&server, &format!("/sessions/{ended}")).await;
    assert!(other.contains("<li class=\"event end\""));
    let (status, _, _) = page(&server, "/sessions/no-such-session").await;
    assert_eq!(status, 404);

    let (status, _, analytics) = page(&server, "/analytics?days=7").await;
    assert_eq!(status, 200);
    assert!(analytics.contains("<select id=\"days\""));
    assert!(analytics.contains("<tr data-component=\"oneiric\">"));
    assert!(analytics.contains("data-field=\"total_sessions\" data-value=\"1\""));
    assert!(analytics.contains("<svg class=\"chart\""));

    let (status, _, status_page) = page(&server, "/status").await;
    assert_eq!(status, 200);
    assert!(status_page.contains(session_buddy_server::VERSION));
    assert!(status_page.contains("sqlite"));

    // Assets: hashed names, cached for a year, under the CSP too.
    let (css, js) = session_buddy_server::console::asset_paths();
    for path in [&css, &js] {
        assert!(live.contains(path.as_str()));
        let (status, headers, body) = page(&server, path).await;
        assert_eq!(status, 200);
        assert!(
            headers["cache-control"]
                .to_str()
                .unwrap()
                .contains("max-age=31536000")
        );
        assert!(headers.contains_key(CONTENT_SECURITY_POLICY));
        assert!(!body.is_empty());
    }
    assert!(live.len() + session_buddy_server::console::asset_bytes() < 300 * 1024);
    let (status, headers, _) = page(&server, "/assets/console.0000000000000000.js").await;
    assert_eq!(status, 404);
    assert!(headers.contains_key(CONTENT_SECURITY_POLICY));
    server.stop().await;
}

#[tokio::test]
async fn downloads_are_what_the_list_shows_and_csv_goes_through_the_text_writer() {
    let server = TestServer::start().await;
    let (active, ended) = seed(&server).await;
    let (status, headers, csv) = page(&server, "/sessions.csv?limit=1").await;
    assert_eq!(status, 200);
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .contains("sessions.csv")
    );
    assert_eq!(
        csv.lines().count(),
        2,
        "a header and the one row shown: {csv}"
    );
    assert!(csv.contains(&active) || csv.contains(&ended));
    let (status, _, json) = page(&server, "/sessions.json?component=oneiric").await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["sessions"][0]["session_id"], active.as_str());
    // The console's CSV is the CLI's: one writer.
    let shown: session_buddy_events::SessionPage = serde_json::from_str(&json).unwrap();
    let (_, _, csv) = page(&server, "/sessions.csv?component=oneiric").await;
    assert_eq!(
        csv,
        session_buddy_text::sessions::sessions_csv(&shown.sessions)
    );
    server.stop().await;
}

/// Contract 6: crates/text's writer neutralises formula cells (slice "security" adds the rule);
/// the console's download goes through it.
#[tokio::test]
async fn csv_downloads_neutralise_formulas() {
    let server = TestServer::start().await;
    let mut s = start("oneiric", "2026-03-01T10:00:00Z");
    s["environment"]["cwd"] = json!("=cmd()");
    server.post_events(&[s]).await;
    let (status, _, csv) = page(&server, "/sessions.csv").await;
    assert_eq!(status, 200);
    assert!(csv.contains("cmd()"), "{csv}");
    assert!(
        !csv.lines()
            .any(|l| l.split(',').any(|c| c.starts_with('='))),
        "a cell starting with '=' is a formula: {csv}"
    );
    server.stop().await;
}

#[tokio::test]
async fn pages_follow_the_cursor() {
    let server = TestServer::start().await;
    let now = chrono::Utc::now();
    let mut ids = Vec::new();
    for i in 0..5 {
        let s = start(
            "oneiric",
            &(now - chrono::TimeDelta::seconds(100 - i)).to_rfc3339(),
        );
        ids.push(session_id_of(&s));
        server.post_events(&[s]).await;
    }
    let (_, _, first) = page(&server, "/sessions?limit=2&component=oneiric").await;
    assert_eq!(first.matches("<tr data-session=").count(), 2);
    let href = first
        .split("rel=\"next\" href=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .replace("&amp;", "&");
    assert!(
        href.contains("component=oneiric") && href.contains("cursor="),
        "{href}"
    );
    let (_, _, second) = page(&server, &href).await;
    assert_eq!(second.matches("<tr data-session=").count(), 2);
    assert!(second.contains(&ids[2]) && second.contains(&ids[1]));
    server.stop().await;
}

async fn secured() -> TestServer {
    TestServer::start_with(ServerOptions {
        auth: AuthOptions {
            secret: Some(SECRET.into()),
            revocation_refresh: Duration::from_millis(200),
            ..AuthOptions::default()
        },
        ..ServerOptions::default()
    })
    .await
}

/// The login form's CSRF token and its cookie.
async fn login_form(server: &TestServer, http: &reqwest::Client) -> (String, String) {
    let r = http
        .get(format!("{}/login", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key(CONTENT_SECURITY_POLICY));
    let cookie = r.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let body = r.text().await.unwrap();
    assert!(body.contains("<form id=\"login\"") && body.contains("name=\"token\""));
    let csrf = body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    (csrf, cookie)
}

/// Logs in with `token`: the response (a redirect with the session cookie, or the form again).
async fn log_in(server: &TestServer, token: &str) -> reqwest::Response {
    let http = no_redirects();
    let (csrf, cookie) = login_form(server, &http).await;
    http.post(format!("{}/login", server.url))
        .header(COOKIE, cookie)
        .header("origin", &server.url)
        .header("sec-fetch-site", "same-origin")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("csrf", csrf.as_str()), ("token", token)]))
        .send()
        .await
        .unwrap()
}

fn session_cookie(r: &reqwest::Response) -> String {
    let set = r
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("sb_console="))
        .expect("a console cookie");
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    set.split(';').next().unwrap().to_string()
}

async fn error_of(r: reqwest::Response) -> String {
    let body = r.text().await.unwrap();
    body.split("class=\"error\" role=\"alert\">")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .unwrap_or_else(|| panic!("no .error in {body}"))
        .to_string()
}

#[tokio::test]
async fn login_with_good_wrong_expired_and_revoked_tokens() {
    let server = secured().await;
    let http = no_redirects();
    let r = http.get(format!("{}/", server.url)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()[LOCATION], "/login");
    assert!(r.headers().contains_key(CONTENT_SECURITY_POLICY));

    let r = log_in(&server, "not-a-token").await;
    assert_eq!(r.status(), 401);
    assert!(error_of(r).await.contains("not a valid token"));
    let forged = mint_token(
        "another-secret-of-enough-length-0123456789",
        &claims("x", &["read"], None),
    )
    .unwrap();
    let r = log_in(&server, &forged).await;
    assert!(error_of(r).await.contains("not issued by this server"));
    let mut old = claims("x", &["read"], None);
    old.exp = chrono::Utc::now().timestamp() - 120;
    let r = log_in(&server, &mint_token(SECRET, &old).unwrap()).await;
    assert!(error_of(r).await.contains("expired"));
    let r = log_in(&server, &token(&["emit"], None)).await;
    assert!(error_of(r).await.contains("read scope"));

    let good = claims("alice", &["read"], None);
    let r = log_in(&server, &mint_token(SECRET, &good).unwrap()).await;
    assert_eq!(r.status(), 303);
    let cookie = session_cookie(&r);
    let r = http
        .get(format!("{}/", server.url))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(body.contains("action=\"/logout\""));

    // Revoking the token ends the console session at once.
    let admin = token(&["admin"], None);
    let r = server
        .http
        .post(format!("{}/v1/tokens/revoke", server.url))
        .bearer_auth(&admin)
        .json(&json!({"jti": good.jti}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .get(format!("{}/", server.url))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "a revoked token's console session is over");
    let r = log_in(&server, &mint_token(SECRET, &good).unwrap()).await;
    assert!(error_of(r).await.contains("revoked"));

    // A post without the form's CSRF token, or from another site, is refused.
    let (csrf, cookie) = login_form(&server, &http).await;
    let fresh = token(&["read"], None);
    let r = http
        .post(format!("{}/login", server.url))
        .header(COOKIE, &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("csrf", "wrong"), ("token", fresh.as_str())]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = http
        .post(format!("{}/login", server.url))
        .header(COOKIE, &cookie)
        .header("origin", "http://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("csrf", csrf.as_str()), ("token", fresh.as_str())]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    server.stop().await;
}

#[tokio::test]
async fn a_console_cookie_reads_the_console_only_and_logout_ends_it() {
    let server = secured().await;
    let http = no_redirects();
    let r = log_in(&server, &token(&["admin"], None)).await;
    assert_eq!(r.status(), 303);
    let cookie = session_cookie(&r);
    for path in ["/", "/sessions", "/analytics", "/status", "/sessions.csv"] {
        let r = http
            .get(format!("{}{path}", server.url))
            .header(COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(r.headers().contains_key(CONTENT_SECURITY_POLICY), "{path}");
    }
    // Even an admin token's console session cannot ingest, administer or read the REST API.
    let start_event = start("oneiric", "2026-03-01T10:00:00Z");
    let r = http
        .post(format!("{}/v1/events", server.url))
        .header(COOKIE, &cookie)
        .json(&json!([start_event]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .post(format!("{}/v1/tokens/revoke", server.url))
        .header(COOKIE, &cookie)
        .json(&json!({"jti": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .post(format!("{}/v1/admin/redact", server.url))
        .header(COOKIE, &cookie)
        .json(&json!({"apply": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .get(format!("{}/v1/sessions", server.url))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Logout needs the page's CSRF token; then the session is gone.
    let body = http
        .get(format!("{}/", server.url))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    let r = http
        .post(format!("{}/logout", server.url))
        .header(COOKIE, &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("csrf", "forged")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = http
        .post(format!("{}/logout", server.url))
        .header(COOKIE, &cookie)
        .header("sec-fetch-site", "same-origin")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("csrf", csrf.as_str())]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()[LOCATION], "/login");
    let r = http
        .get(format!("{}/", server.url))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = http
        .get(format!("{}/sessions", server.url))
        .bearer_auth(token(&["read"], None))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "a read token opens a console page too");
    server.stop().await;
}

#[tokio::test]
async fn analytics_show_error_rates_in_percent_once() {
    let server = TestServer::start().await;
    let s = start("oneiric", &chrono::Utc::now().to_rfc3339());
    let id = session_id_of(&s);
    server
        .post_events(&[s, end(&id, &chrono::Utc::now().to_rfc3339(), 1)])
        .await;
    let (_, _, html) = page(&server, "/analytics?days=1").await;
    assert!(
        html.contains("data-field=\"error_rate\" data-value=\"100\""),
        "{html}"
    );
    assert!(html.contains(">100.0%<") && !html.contains("10000.0%"));
    server.stop().await;
}

#[tokio::test]
async fn a_console_session_of_a_token_bound_to_akosha_shows_akosha_only() {
    let server = secured().await;
    let now = chrono::Utc::now();
    let ts = |secs: i64| {
        (now - chrono::TimeDelta::seconds(secs))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let other = start("oneiric", &ts(120));
    let other_id = session_id_of(&other);
    let mine = start("akosha", &ts(100));
    let mine_id = session_id_of(&mine);
    let over = start("oneiric", &ts(300));
    let over_id = session_id_of(&over);
    let r = server
        .http
        .post(format!("{}/v1/events", server.url))
        .header(
            "authorization",
            format!("Bearer {}", token(&["admin"], None)),
        )
        .json(&json!([other, mine, over, end(&over_id, &ts(200), 0)]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut bound = claims("auditor", &["read"], None);
    bound.read_components = vec!["akosha".into()];
    let r = log_in(&server, &mint_token(SECRET, &bound).unwrap()).await;
    assert_eq!(r.status(), 303);
    let cookie = session_cookie(&r);
    let http = no_redirects();
    let get = |path: String| {
        let http = http.clone();
        let cookie = cookie.clone();
        async move {
            let r = http.get(path).header(COOKIE, cookie).send().await.unwrap();
            (r.status(), r.text().await.unwrap())
        }
    };
    for path in [
        "/",
        "/sessions",
        "/sessions?status=active",
        "/sessions?component=oneiric",
        "/analytics",
        "/sessions.csv",
        "/sessions.json",
    ] {
        let (status, body) = get(format!("{}{path}", server.url)).await;
        assert_eq!(status, 200, "{path}");
        assert!(
            !body.contains(&other_id) && !body.contains(&over_id),
            "{path} shows another component's session: {body}"
        );
        if path.contains("component=") {
            assert!(body.contains("0 sessions shown"), "{path}: {body}");
        } else {
            assert!(
                !body.contains("oneiric"),
                "{path} shows another component: {body}"
            );
        }
        if !path.contains("component=") && path != "/analytics" {
            assert!(body.contains(&mine_id), "{path} lacks akosha's session");
        }
    }
    for id in [&other_id, &over_id] {
        let (status, _) = get(format!("{}/sessions/{id}", server.url)).await;
        assert_eq!(status, 404, "another component's session page");
    }
    let (status, body) = get(format!("{}/sessions/{mine_id}", server.url)).await;
    assert_eq!(status, 200, "{body}");
}
