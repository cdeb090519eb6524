//! Redaction of secrets in command arguments, applied before anything is buffered or stored.

const REDACTED: &str = "[REDACTED]";

/// Flags whose following value is a secret.
const SECRET_FLAGS: &[&str] = &[
    "password",
    "passwd",
    "pass",
    "token",
    "secret",
    "api-key",
    "apikey",
    "api_key",
    "key",
    "access-token",
    "auth-token",
    "client-secret",
    "private-key",
    "credentials",
    "auth",
];

/// Replaces secrets in `args` with `[REDACTED]`: JWTs, bearer tokens, values of `--password`,
/// `--token`, `--secret` and the like (`--flag value` or `--flag=value`), and `NAME=value`
/// assignments whose name ends in `_KEY`, `_TOKEN`, `_SECRET` or `_PASSWORD`.
pub fn redact_args(args: &str) -> String {
    let mut out = String::with_capacity(args.len());
    let mut redact_next = false;
    let mut rest = args;
    while !rest.is_empty() {
        let ws_len = rest.len() - rest.trim_start().len();
        out.push_str(&rest[..ws_len]);
        rest = &rest[ws_len..];
        let word_len = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let word = &rest[..word_len];
        rest = &rest[word_len..];
        if word.is_empty() {
            continue;
        }
        let bare = word.trim_matches(|c: char| c == '"' || c == '\'');
        let is_scheme = bare.eq_ignore_ascii_case("bearer") || bare.eq_ignore_ascii_case("basic");
        if redact_next && !is_scheme {
            out.push_str(REDACTED);
            redact_next = false;
            continue;
        }
        if is_scheme || bare.eq_ignore_ascii_case("authorization:") {
            out.push_str(word);
            redact_next = true;
            continue;
        }
        if let Some((key, _value)) = word.split_once('=') {
            if is_secret_name(key) {
                out.push_str(key);
                out.push('=');
                out.push_str(REDACTED);
                continue;
            }
        } else if word.starts_with('-') && is_secret_flag(word) {
            out.push_str(word);
            redact_next = true;
            continue;
        }
        if looks_like_jwt(word) {
            out.push_str(REDACTED);
        } else {
            out.push_str(word);
        }
    }
    out
}

fn is_secret_flag(word: &str) -> bool {
    let name = word.trim_start_matches('-').to_ascii_lowercase();
    SECRET_FLAGS.contains(&name.as_str())
}

fn is_secret_name(key: &str) -> bool {
    let bare = key.trim_start_matches('-').to_ascii_lowercase();
    if SECRET_FLAGS.contains(&bare.as_str()) {
        return true;
    }
    [
        "_key",
        "_token",
        "_secret",
        "_password",
        "_passwd",
        "-key",
        "-token",
        "-secret",
        "-password",
    ]
    .iter()
    .any(|suffix| bare.ends_with(suffix))
}

fn looks_like_jwt(word: &str) -> bool {
    let word = word.trim_matches(|c: char| c == '"' || c == '\'' || c == ',');
    let parts: Vec<&str> = word.split('.').collect();
    parts.len() == 3
        && parts[0].starts_with("eyJ")
        && parts.iter().all(|p| {
            p.len() >= 4
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'=')
        })
}

#[cfg(test)]
mod tests {
    use super::redact_args;

    #[test]
    fn redacts_common_secret_shapes() {
        let cases = [
            ("--password hunter2 -v", "--password [REDACTED] -v"),
            ("--token=abc123", "--token=[REDACTED]"),
            (
                "AWS_SECRET_ACCESS_KEY=xyz run",
                "AWS_SECRET_ACCESS_KEY=[REDACTED] run",
            ),
            (
                "-H Authorization: Bearer abc.def",
                "-H Authorization: Bearer [REDACTED]",
            ),
            ("curl -H 'Bearer tok'", "curl -H 'Bearer [REDACTED]"),
            (
                "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl x",
                "[REDACTED] x",
            ),
            ("show  layers", "show  layers"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(redact_args(input), want, "input {input:?}");
        }
    }
}
