//! Redaction of secrets in command arguments, applied before anything is buffered or stored.
//!
//! One hand-written scanner (no regex engine: it runs on every command a tracked process
//! records) finds the spans that hold secrets and replaces each with `[REDACTED]`, keeping
//! everything around them (flag names, keys, quotes, URL hosts, auth schemes) as typed:
//!
//! - values of secret flags: `--password VALUE`, `--token=VALUE`, …;
//! - `key=value` and `key="value"` pairs (also in URL queries and JSON `"key": "value"`) whose
//!   key names a secret: `password`, `passwd`, `secret`, `token`, `api_key`, `access_key`,
//!   `private_key`, `credentials`, … or ends in `_KEY`, `_TOKEN`, `_SECRET`, `_PASSWORD`, …;
//! - the password of `user:password@` in any URL;
//! - `Authorization:`, `Proxy-Authorization:`, `Cookie:`, `Set-Cookie:` (and API-key) header
//!   values, keeping the auth scheme (`Authorization: Bearer [REDACTED]`);
//! - the value after `Bearer`;
//! - AWS access key ids (`AKIA…`/`ASIA…`), GitHub tokens (`ghp_`, `gho_`, `ghu_`, `ghs_`,
//!   `ghr_`, `github_pat_`), Slack tokens (`xoxa-`, `xoxb-`, `xoxp-`, `xoxr-`, `xoxs-`), JWTs;
//! - the body of PEM private-key blocks.
//!
//! Redacting twice changes nothing ([`redact_args`] is idempotent), and
//! [`redactions_compatible`] says whether two stored texts can be one original redacted by
//! different rules (how deduplication recognises an event re-sent across a change of them).

use crate::limits::ARGS_MAX_BYTES;

/// What a secret is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Flags whose following value (or `=value`) is a secret.
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

/// Key names that are secrets on their own (`token=…`), compared lowercased.
const SECRET_KEYS: &[&str] = &[
    "password",
    "passwd",
    "pass",
    "pwd",
    "secret",
    "token",
    "key",
    "auth",
    "apikey",
    "api_key",
    "api-key",
    "access_key",
    "access-key",
    "accesskey",
    "secret_key",
    "private_key",
    "private-key",
    "privatekey",
    "credentials",
    "credential",
    "client_secret",
    "access_token",
    "accesstoken",
    "auth_token",
    "authtoken",
    "refresh_token",
    "session_token",
    "id_token",
    "jwt",
    "passphrase",
];

/// A key ending in one of these after a separator (`DB_PASSWORD`, `github.token`,
/// `client-secret`) names a secret too.
const SECRET_KEY_WORDS: &[&str] = &[
    "key",
    "token",
    "secret",
    "password",
    "passwd",
    "pass",
    "credentials",
    "credential",
    "passphrase",
    "apikey",
];

/// Header names whose value is a secret, compared lowercased.
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "api-key",
    "x-auth-token",
    "x-access-token",
];

/// Authentication schemes kept in front of a redacted `Authorization` value.
const AUTH_SCHEMES: &[&str] = &[
    "bearer",
    "basic",
    "digest",
    "token",
    "negotiate",
    "ntlm",
    "hoba",
    "mutual",
    "aws4-hmac-sha256",
];

/// Replaces the secrets in `args` with `[REDACTED]` (see the module documentation for what
/// counts as one); everything else is kept as typed.
pub fn redact_args(args: &str) -> String {
    let mut spans = Spans(Vec::new());
    let b = args.as_bytes();
    flag_and_bearer_values(b, &mut spans);
    separator_rules(b, &mut spans);
    token_shapes(b, &mut spans);
    spans.apply(args)
}

/// A terminal's output as recorded: JWTs, the value after `Bearer` and the body of PEM
/// private-key blocks replaced by `[REDACTED]`, everything else as shown. Best effort: a
/// secret the program printed across two frames, or in another shape, is kept.
pub fn mask_output(text: &str) -> std::borrow::Cow<'_, str> {
    // Most output holds none of the anchors: one pass over it and no copy.
    if !(text.contains("eyJ") || text.contains("earer") || text.contains("-----BEGIN ")) {
        return std::borrow::Cow::Borrowed(text);
    }
    let b = text.as_bytes();
    let mut spans = Spans(Vec::new());
    let mut i = 0;
    while i < b.len() {
        let found = match b[i] {
            b'e' if i == 0 || !is_b64url(b[i - 1]) => jwt(b, i),
            b'-' => pem_private_key(b, i),
            b'B' | b'b' if b[i..].len() > 7 && b[i..i + 6].eq_ignore_ascii_case(b"bearer") => {
                let gap = run(b, i + 6, |c| c == b' ' || c == b'\t');
                let n = run(b, i + 6 + gap, |c| {
                    c.is_ascii_alphanumeric() || b"-._~+/=".contains(&c)
                });
                (gap > 0 && n >= 8).then_some((i + 6 + gap, i + 6 + gap + n))
            }
            _ => None,
        };
        match found {
            Some((s, e)) => {
                spans.add(s, e);
                i = e.max(i + 1);
            }
            None => i += 1,
        }
    }
    if spans.0.is_empty() {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(spans.apply(text))
}

/// Command arguments as stored: redacted, then cut to [`ARGS_MAX_BYTES`] characters
/// (redaction can lengthen a text: `[REDACTED]` for a short secret).
pub fn redact_command_args(args: &str) -> String {
    redact_clipped(args, ARGS_MAX_BYTES)
}

/// `text` redacted, then cut to `max` characters (a command's error, its arguments).
pub fn redact_clipped(text: &str, max: usize) -> String {
    let redacted = redact_args(text);
    match redacted.char_indices().nth(max) {
        Some((cut, _)) => redacted[..cut].to_string(),
        None => redacted,
    }
}

/// Whether `a` and `b` can be the same text with its secrets redacted by different rules
/// (older and current ones): equal once the current rules are applied to both, or one's
/// `[REDACTED]` standing for text the other kept, or both redacting the same places with the
/// neighbouring characters cut differently (`'Bearer [REDACTED]` and `'Bearer [REDACTED]'`).
pub fn redactions_compatible(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let (a, b) = (redact_args(a), redact_args(b));
    if a == b {
        return true;
    }
    let pa: Vec<&str> = a.split(REDACTED).collect();
    let pb: Vec<&str> = b.split(REDACTED).collect();
    match (pa.len() > 1, pb.len() > 1) {
        (false, false) => false,
        (true, false) => glob_matches(&pa, &b),
        (false, true) => glob_matches(&pb, &a),
        (true, true) => {
            glob_matches(&pa, &b)
                || glob_matches(&pb, &a)
                || (pa.len() == pb.len() && same_places(&pa, &pb))
        }
    }
}

/// The literal pieces between the same number of redactions agree, but for characters one
/// side's redaction took with it: the first pieces share a prefix, the last a suffix, and each
/// middle piece contains the other's.
fn same_places(pa: &[&str], pb: &[&str]) -> bool {
    let n = pa.len();
    pa.iter().zip(pb).enumerate().all(|(i, (x, y))| {
        if i == 0 {
            x.starts_with(y) || y.starts_with(x)
        } else if i == n - 1 {
            x.ends_with(y) || y.ends_with(x)
        } else {
            x.contains(y) || y.contains(x)
        }
    })
}

/// Whether `text` matches the pattern whose literal pieces are `pieces` with a wildcard
/// between each two.
fn glob_matches(pieces: &[&str], text: &str) -> bool {
    let (first, last) = (pieces[0], pieces[pieces.len() - 1]);
    if text.len() < first.len() + last.len() || !text.starts_with(first) || !text.ends_with(last) {
        return false;
    }
    // Leftmost match of each middle piece is optimal for `*`-only patterns.
    let mut rest = &text[first.len()..text.len() - last.len()];
    for piece in &pieces[1..pieces.len() - 1] {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    true
}

/// Byte ranges to replace; every bound lies next to an ASCII byte or at an end of the text,
/// so it is a char boundary.
struct Spans(Vec<(usize, usize)>);

impl Spans {
    fn add(&mut self, start: usize, end: usize) {
        if start < end {
            self.0.push((start, end));
        }
    }

    fn apply(mut self, text: &str) -> String {
        if self.0.is_empty() {
            return text.to_string();
        }
        self.0.sort_unstable();
        let mut out = String::with_capacity(text.len() + 16);
        let mut at = 0;
        let mut current: Option<(usize, usize)> = None;
        for (s, e) in self.0 {
            match current {
                Some((cs, ce)) if s <= ce => current = Some((cs, ce.max(e))),
                Some((cs, ce)) => {
                    out.push_str(&text[at..cs]);
                    out.push_str(REDACTED);
                    at = ce;
                    current = Some((s, e));
                }
                None => current = Some((s, e)),
            }
        }
        if let Some((cs, ce)) = current {
            out.push_str(&text[at..cs]);
            out.push_str(REDACTED);
            at = ce;
        }
        out.push_str(&text[at..]);
        out
    }
}

fn is_quote(c: u8) -> bool {
    matches!(c, b'"' | b'\'' | b'`')
}

fn is_key_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.')
}

fn is_b64url(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'=')
}

/// Whitespace-separated words as byte ranges.
fn words(b: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() {
            return None;
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        Some((start, i))
    })
}

/// A word without the quotes around it.
fn unquoted(b: &[u8], (mut s, mut e): (usize, usize)) -> (usize, usize) {
    while s < e && is_quote(b[s]) {
        s += 1;
    }
    while e > s && (is_quote(b[e - 1]) || b[e - 1] == b',') {
        e -= 1;
    }
    (s, e)
}

fn lower(b: &[u8], (s, e): (usize, usize)) -> Option<String> {
    let word = std::str::from_utf8(&b[s..e]).ok()?;
    Some(word.to_ascii_lowercase())
}

/// `--password VALUE` (the next word, or the whole quoted string it opens) and
/// `Bearer VALUE`.
fn flag_and_bearer_values(b: &[u8], spans: &mut Spans) {
    let mut redact_next = false;
    let mut skip_until = 0;
    for word in words(b) {
        if word.0 < skip_until {
            continue;
        }
        let (s, e) = unquoted(b, word);
        if redact_next {
            redact_next = false;
            if is_quote(b[word.0]) {
                let (s, e) = value_span(b, word.0);
                spans.add(s, e);
                skip_until = e;
            } else {
                spans.add(s, e);
            }
            continue;
        }
        let bare = &b[s..e];
        if bare.eq_ignore_ascii_case(b"bearer") {
            redact_next = true;
        } else if bare.first() == Some(&b'-') && !bare.contains(&b'=') {
            let name = &bare[bare.iter().take_while(|&&c| c == b'-').count()..];
            redact_next = SECRET_FLAGS
                .iter()
                .any(|f| f.as_bytes().eq_ignore_ascii_case(name));
        }
    }
}

/// Rules anchored on `=`, `:` and `://`: secret `key=value` pairs, JSON `"key": "value"`,
/// secret headers and URL passwords.
fn separator_rules(b: &[u8], spans: &mut Spans) {
    for i in 0..b.len() {
        match b[i] {
            b'=' => key_value(b, i, spans),
            b':' if b[i + 1..].starts_with(b"//") => url_password(b, i + 3, spans),
            b':' => {
                json_pair(b, i, spans);
                header_value(b, i, spans);
            }
            _ => {}
        }
    }
}

/// The key (a run of letters, digits, `_`, `-`, `.`) that ends just before `end`.
fn key_before(b: &[u8], end: usize) -> (usize, usize) {
    let mut s = end;
    while s > 0 && is_key_char(b[s - 1]) {
        s -= 1;
    }
    (s, end)
}

/// Whether a `key=value` key (or a `--flag=value` flag) names a secret.
fn is_secret_name(key: &str) -> bool {
    let key = key.trim_start_matches('-').to_ascii_lowercase();
    if SECRET_KEYS.contains(&key.as_str()) || SECRET_FLAGS.contains(&key.as_str()) {
        return true;
    }
    SECRET_KEY_WORDS.iter().any(|word| {
        key.len() > word.len()
            && key.ends_with(word)
            && matches!(
                key.as_bytes()[key.len() - word.len() - 1],
                b'_' | b'-' | b'.'
            )
    })
}

/// The value that starts at `v`: inside its quotes when quoted, else up to whitespace, `&`,
/// `;` or a quote (the end of an enclosing quoted string).
fn value_span(b: &[u8], v: usize) -> (usize, usize) {
    if v < b.len() && is_quote(b[v]) {
        let q = b[v];
        let end = b[v + 1..]
            .iter()
            .position(|&c| c == q)
            .map_or(b.len(), |p| v + 1 + p);
        return (v + 1, end);
    }
    let end = b[v..]
        .iter()
        .position(|&c| c.is_ascii_whitespace() || matches!(c, b'&' | b';') || is_quote(c))
        .map_or(b.len(), |p| v + p);
    (v, end)
}

fn key_value(b: &[u8], eq: usize, spans: &mut Spans) {
    let (ks, ke) = key_before(b, eq);
    let Ok(key) = std::str::from_utf8(&b[ks..ke]) else {
        return;
    };
    if key.trim_start_matches('-').is_empty() || !is_secret_name(key) {
        return;
    }
    let (s, e) = value_span(b, eq + 1);
    spans.add(s, e);
}

/// `"password": "value"` in JSON text.
fn json_pair(b: &[u8], colon: usize, spans: &mut Spans) {
    let mut j = colon;
    while j > 0 && b[j - 1] == b' ' {
        j -= 1;
    }
    if j == 0 || b[j - 1] != b'"' {
        return;
    }
    let (ks, ke) = key_before(b, j - 1);
    if ks == 0 || b[ks - 1] != b'"' {
        return;
    }
    let Ok(key) = std::str::from_utf8(&b[ks..ke]) else {
        return;
    };
    if key.is_empty() || !is_secret_name(key) {
        return;
    }
    let mut v = colon + 1;
    while v < b.len() && b[v] == b' ' {
        v += 1;
    }
    if v >= b.len() || b[v] != b'"' {
        return;
    }
    // Up to the closing quote, stepping over backslash escapes.
    let mut e = v + 1;
    while e < b.len() && b[e] != b'"' {
        e += if b[e] == b'\\' { 2 } else { 1 };
    }
    spans.add(v + 1, e.min(b.len()));
}

/// `Authorization: Bearer VALUE`, `Cookie: VALUE`, …: the whole value when the header is
/// quoted (`-H 'Cookie: a=1; b=2'`), else its next word; an auth scheme is kept.
fn header_value(b: &[u8], colon: usize, spans: &mut Spans) {
    let mut ns = colon;
    while ns > 0 && (b[ns - 1].is_ascii_alphanumeric() || b[ns - 1] == b'-') {
        ns -= 1;
    }
    if ns == colon || (ns > 0 && (b[ns - 1].is_ascii_alphanumeric() || b[ns - 1] == b'_')) {
        return;
    }
    let Some(name) = lower(b, (ns, colon)) else {
        return;
    };
    if !SECRET_HEADERS.contains(&name.as_str()) {
        return;
    }
    let quote = (ns > 0 && is_quote(b[ns - 1])).then(|| b[ns - 1]);
    let skip_blanks = |mut i: usize| {
        while i < b.len() && matches!(b[i], b' ' | b'\t') {
            i += 1;
        }
        i
    };
    let word_end = |i: usize| {
        b[i..]
            .iter()
            .position(|&c| c.is_ascii_whitespace() || Some(c) == quote)
            .map_or(b.len(), |p| i + p)
    };
    let mut v = skip_blanks(colon + 1);
    if v >= b.len() {
        return;
    }
    let first_end = word_end(v);
    if lower(b, (v, first_end)).is_some_and(|w| AUTH_SCHEMES.contains(&w.as_str())) {
        v = if quote.is_some() {
            skip_blanks(first_end)
        } else {
            // Unquoted: the value is the next word, wherever it is.
            let mut i = first_end;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            i
        };
        if v >= b.len() {
            return;
        }
    }
    let end = match quote {
        Some(q) => b[v..]
            .iter()
            .position(|&c| c == q)
            .map_or(b.len(), |p| v + p),
        None => unquoted(b, (v, word_end(v))).1,
    };
    spans.add(v, end);
}

/// `scheme://user:password@host`: the password.
fn url_password(b: &[u8], authority: usize, spans: &mut Spans) {
    let end = b[authority..]
        .iter()
        .position(|&c| {
            c.is_ascii_whitespace() || matches!(c, b'/' | b'?' | b'#' | b'<' | b'>') || is_quote(c)
        })
        .map_or(b.len(), |p| authority + p);
    let Some(at) = b[authority..end].iter().rposition(|&c| c == b'@') else {
        return;
    };
    let at = authority + at;
    if let Some(colon) = b[authority..at].iter().position(|&c| c == b':') {
        spans.add(authority + colon + 1, at);
    }
}

/// Secrets recognised by their shape: cloud and chat tokens, JWTs, PEM private keys.
fn token_shapes(b: &[u8], spans: &mut Spans) {
    let mut i = 0;
    while i < b.len() {
        let boundary = i == 0 || !b[i - 1].is_ascii_alphanumeric();
        let found = match b[i] {
            b'A' if boundary => aws_key_id(b, i),
            b'g' if boundary => github_token(b, i),
            b'x' if boundary => slack_token(b, i),
            b'e' if i == 0 || !is_b64url(b[i - 1]) => jwt(b, i),
            b'-' => pem_private_key(b, i),
            _ => None,
        };
        match found {
            Some((s, e)) => {
                spans.add(s, e);
                i = e.max(i + 1);
            }
            None => i += 1,
        }
    }
}

/// The length of the run of bytes from `i` that satisfy `f`.
fn run(b: &[u8], i: usize, f: impl Fn(u8) -> bool) -> usize {
    b[i.min(b.len())..].iter().take_while(|&&c| f(c)).count()
}

/// `AKIA`/`ASIA` and 16 upper-case letters or digits: an AWS access key id.
fn aws_key_id(b: &[u8], i: usize) -> Option<(usize, usize)> {
    let rest = &b[i..];
    if !(rest.starts_with(b"AKIA") || rest.starts_with(b"ASIA")) {
        return None;
    }
    let n = run(b, i + 4, |c| c.is_ascii_uppercase() || c.is_ascii_digit());
    let end = i + 4 + n;
    let alone = end == b.len() || !b[end].is_ascii_alphanumeric();
    (n == 16 && alone).then_some((i, end))
}

fn github_token(b: &[u8], i: usize) -> Option<(usize, usize)> {
    let rest = &b[i..];
    if rest.starts_with(b"github_pat_") {
        let n = run(b, i + 11, |c| c.is_ascii_alphanumeric() || c == b'_');
        return (n >= 20).then_some((i, i + 11 + n));
    }
    let prefixed = [b"ghp_", b"gho_", b"ghu_", b"ghs_", b"ghr_"]
        .iter()
        .any(|p| rest.starts_with(*p));
    if !prefixed {
        return None;
    }
    let n = run(b, i + 4, |c| c.is_ascii_alphanumeric());
    (n >= 20).then_some((i, i + 4 + n))
}

fn slack_token(b: &[u8], i: usize) -> Option<(usize, usize)> {
    let rest = &b[i..];
    if rest.len() < 5
        || !rest.starts_with(b"xox")
        || !b"abprs".contains(&rest[3])
        || rest[4] != b'-'
    {
        return None;
    }
    let n = run(b, i + 5, |c| c.is_ascii_alphanumeric() || c == b'-');
    (n >= 10).then_some((i, i + 5 + n))
}

/// `eyJ…` header, payload and signature: three base64url parts of at least 4 characters.
fn jwt(b: &[u8], i: usize) -> Option<(usize, usize)> {
    if !b[i..].starts_with(b"eyJ") {
        return None;
    }
    let mut end = i;
    for part in 0..3 {
        if part > 0 {
            if end >= b.len() || b[end] != b'.' {
                return None;
            }
            end += 1;
        }
        let n = run(b, end, is_b64url);
        if n < 4 {
            return None;
        }
        end += n;
    }
    Some((i, end))
}

/// The body of `-----BEGIN … PRIVATE KEY-----` … `-----END …`; to the end of the text when
/// the end line is missing (a clipped argument).
fn pem_private_key(b: &[u8], i: usize) -> Option<(usize, usize)> {
    const BEGIN: &[u8] = b"-----BEGIN ";
    if !b[i..].starts_with(BEGIN) {
        return None;
    }
    let label_start = i + BEGIN.len();
    let label_len = b[label_start..].windows(5).position(|w| w == b"-----")?;
    let label = &b[label_start..label_start + label_len];
    if !label.windows(11).any(|w| w == b"PRIVATE KEY") {
        return None;
    }
    let body = label_start + label_len + 5;
    let end = b[body..]
        .windows(9)
        .position(|w| w == b"-----END ")
        .map_or(b.len(), |p| body + p);
    Some((body, end))
}

#[cfg(test)]
mod tests;
