//! Unit tests of `redact`.

use super::*;

const R: &str = REDACTED;

#[test]
fn secrets_are_redacted() {
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
    let pem =
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nq83v\n-----END RSA PRIVATE KEY-----";
    let cases: Vec<(String, String)> = [
        // Flags.
        ("--password hunter2 -v", "--password [R] -v"),
        ("--token=abc123", "--token=[R]"),
        ("--password 'two words' -v", "--password '[R]' -v"),
        ("--api-key \"k3y\" next", "--api-key \"[R]\" next"),
        // key=value and key="value".
        (
            "AWS_SECRET_ACCESS_KEY=xyz run",
            "AWS_SECRET_ACCESS_KEY=[R] run",
        ),
        ("password=hunter2", "password=[R]"),
        ("passwd=x secret=y", "passwd=[R] secret=[R]"),
        ("token=\"a b c\" rest", "token=\"[R]\" rest"),
        ("api_key='k' access_key=a", "api_key='[R]' access_key=[R]"),
        (
            "private_key=pk credentials=c",
            "private_key=[R] credentials=[R]",
        ),
        (
            "DB_PASSWORD=pw GITHUB_TOKEN=t",
            "DB_PASSWORD=[R] GITHUB_TOKEN=[R]",
        ),
        (
            "db.password=pw client-secret=s",
            "db.password=[R] client-secret=[R]",
        ),
        (
            "curl 'https://api.example.com/x?user=bob&token=abc&page=2'",
            "curl 'https://api.example.com/x?user=bob&token=[R]&page=2'",
        ),
        (
            "-d '{\"user\": \"bob\", \"password\": \"pw\\\"x\"}'",
            "-d '{\"user\": \"bob\", \"password\": \"[R]\"}'",
        ),
        // URLs.
        (
            "fetch http://bob:hunter2@example.com/x",
            "fetch http://bob:[R]@example.com/x",
        ),
        (
            "postgres://ann:s3cr@t@db:5432/app",
            "postgres://ann:[R]@db:5432/app",
        ),
        (
            "git clone https://x:ghtoken@github.com/o/r.git",
            "git clone https://x:[R]@github.com/o/r.git",
        ),
        // Headers.
        (
            "-H Authorization: Bearer abc.def",
            "-H Authorization: Bearer [R]",
        ),
        (
            "-H 'Authorization: Basic dXNlcjpwdw=='",
            "-H 'Authorization: Basic [R]'",
        ),
        (
            "-H \"authorization: token xyz\"",
            "-H \"authorization: token [R]\"",
        ),
        (
            "-H 'Cookie: session=abc; theme=dark' url",
            "-H 'Cookie: [R]' url",
        ),
        (
            "-H 'Set-Cookie: id=1' -H 'Accept: */*'",
            "-H 'Set-Cookie: [R]' -H 'Accept: */*'",
        ),
        ("-H Proxy-Authorization:xyz", "-H Proxy-Authorization:[R]"),
        ("-H 'X-Api-Key: k123'", "-H 'X-Api-Key: [R]'"),
        // Bearer values.
        ("curl -H 'Bearer tok'", "curl -H 'Bearer [R]'"),
        ("bearer abc", "bearer [R]"),
        // Shapes.
        ("aws AKIAIOSFODNN7EXAMPLE ok", "aws [R] ok"),
        ("id=ASIAY34FZKBOKMUTVV7A", "id=[R]"),
        ("ghp_0123456789abcdefghijABCDEFGHIJ012345", "[R]"),
        ("x gho_0123456789abcdefghijABCDEFGHIJ012345 y", "x [R] y"),
        (
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuv",
            "[R]",
        ),
        ("post xoxb-1234567890-abcdefghij", "post [R]"),
        ("xoxp-12345678901-2345", "[R]"),
    ]
    .into_iter()
    .map(|(i, w)| (i.to_string(), w.replace("[R]", R)))
    .chain([
        (format!("{jwt} x"), format!("{R} x")),
        (format!("--data jwt:{jwt}"), format!("--data jwt:{R}")),
        (
            format!("--key-file - <<< '{pem}'"),
            format!(
                "--key-file - <<< '-----BEGIN RSA PRIVATE KEY-----{R}-----END RSA PRIVATE KEY-----'"
            ),
        ),
        (
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1r (clipped)".to_string(),
            format!("-----BEGIN OPENSSH PRIVATE KEY-----{R}"),
        ),
    ])
    .collect();
    for (input, want) in &cases {
        assert_eq!(&redact_args(input), want, "input {input:?}");
    }
}

#[test]
fn near_misses_stay_as_typed() {
    for input in [
        "",
        "show  layers",
        "tokenizer=bpe",
        "max_tokens=100 token_count=3",
        "passwordless=true password_file=/etc/pw",
        "--passwordless --tokenizer bpe",
        "AKIA",
        "AKIAshort and AKIAIOSFODNN7EXAMPLEXX",
        "xAKIAIOSFODNN7EXAMPLE",
        "ghp_ ghp_short github_pat_",
        "xoxb- xoxq-1234567890abc",
        "http://bob@example.com/x",
        "https://example.com/a:b@c",
        "ssh git@github.com:o/r.git",
        "http://[::1]:8678/v1",
        "Accept: application/json",
        "Authorization:",
        "make basic tests",
        "eyJhbGciOiJIUzI1NiJ9 alone",
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
        "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----",
        "sort_order=asc author=ann",
        "crack --fix",
        "héllo wörld ✓ ключ=значение",
        "password=",
    ] {
        assert_eq!(redact_args(input), input, "input {input:?}");
    }
}

#[test]
fn redacting_twice_changes_nothing() {
    for input in [
        "--password hunter2 http://a:b@c/d?token=x -H 'Authorization: Bearer q' AKIAIOSFODNN7EXAMPLE",
        "-H 'Cookie: a=1; b=2' \"secret\": \"s\" xoxb-1234567890-abc",
        "-----BEGIN EC PRIVATE KEY-----\nabc\n-----END EC PRIVATE KEY-----",
    ] {
        let once = redact_args(input);
        assert_ne!(once, input);
        assert_eq!(redact_args(&once), once, "input {input:?}");
    }
}

#[test]
fn command_args_are_clipped_after_redaction() {
    let long = format!("--token {}", "é".repeat(ARGS_MAX_BYTES * 2));
    let stored = redact_command_args(&long);
    assert_eq!(stored, format!("--token {R}"));
    let long = "é".repeat(ARGS_MAX_BYTES + 5);
    assert_eq!(redact_command_args(&long).chars().count(), ARGS_MAX_BYTES);
}

#[test]
fn redactions_of_one_text_are_compatible() {
    let compatible = [
        ("a b", "a b"),
        ("--password hunter2 -v", "--password [REDACTED] -v"),
        // Old and new rules cutting a quoted value differently.
        ("curl -H 'Bearer [REDACTED]", "curl -H 'Bearer [REDACTED]'"),
        ("x [REDACTED] y [REDACTED] z", "x [REDACTED] z"),
        ("http://bob:[REDACTED]@h", "http://bob:hunter2@h"),
        // Older rules took the URL password as typed and redacted the flag's value.
        (
            "fetch http://bob:hunter2@example.com/x --password [REDACTED]",
            "fetch http://bob:[REDACTED]@example.com/x --password [REDACTED]",
        ),
        ("make basic [REDACTED]", "make basic tests"),
    ];
    for (a, b) in compatible {
        assert!(redactions_compatible(a, b), "{a:?} ~ {b:?}");
        assert!(redactions_compatible(b, a), "{b:?} ~ {a:?}");
    }
    let different = [
        ("a b", "a c"),
        (
            "fetch http://bob:[REDACTED]@example.com/x --password [REDACTED]",
            "fetch http://bob:[REDACTED]@example.com/y --password [REDACTED]",
        ),
        (
            "fetch http://bob:hunter2@example.com/x --password [REDACTED]",
            "fetch http://bob:[REDACTED]@example.com/y --password [REDACTED]",
        ),
        (
            "a [REDACTED] b [REDACTED] c",
            "a [REDACTED] bb [REDACTED] c",
        ),
        ("--password [REDACTED] -v", "--password [REDACTED] -q"),
        ("deploy [REDACTED]", "rollback [REDACTED]"),
        ("--password [REDACTED] -v", "--user bob -v"),
        ("ab[REDACTED]", "a"),
    ];
    for (a, b) in different {
        assert!(!redactions_compatible(a, b), "{a:?} !~ {b:?}");
        assert!(!redactions_compatible(b, a), "{b:?} !~ {a:?}");
    }
}
