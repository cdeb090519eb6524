//! The effective configuration as text, one form for every face (`config show`, oneiric's
//! `show_layers`), fitting 80 columns.

use crate::keys::Key;
use crate::layers::{Problem, Resolved};

const WIDTH: usize = 80;
const KEY_COLUMN: usize = 27;

/// One line per key: `key  value  (source)`; the source goes on the next line, indented by four, when
/// the line would be wider than 80 columns. An invalid value is marked `!`; an empty list is
/// `(none)`, an unset key `-`.
pub fn effective_lines(r: &Resolved, keys: &[&Key]) -> String {
    let mut out = String::new();
    for key in keys {
        let (value, source) = match r.effective(key.name) {
            Some((v, s)) => {
                let t = if v.text.is_empty() { "(none)" } else { &v.text };
                let mark = if v.valid { "" } else { " !" };
                (format!("{t}{mark}"), format!("({s})"))
            }
            None => ("-".to_string(), "(not set)".to_string()),
        };
        let head = format!("{:<KEY_COLUMN$} {value}", key.name);
        if head.chars().count() + 2 + source.chars().count() <= WIDTH {
            out.push_str(&format!("{head}  {source}\n"));
        } else {
            out.push_str(&format!("{head}\n    {source}\n"));
        }
    }
    out
}

/// `layer origin: message`, for a problem or a warning.
pub fn problem_line(p: &Problem) -> String {
    format!("{} {}: {}", p.layer.name(), p.origin, p.message)
}
