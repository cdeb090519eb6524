//! Tab completion: the command names in the first word (all of them at an empty prompt), then
//! the values a helper says its arguments take ([`crate::Helper::complete`]).

use std::sync::Arc;

use reedline::{Completer, CompletionResult, Span, Suggestion};
use session_buddy_client::TrackerConfig;

use crate::{CompletionRequest, ShellSpec, split_words};

pub(crate) struct ShellCompleter {
    pub spec: Arc<ShellSpec>,
    pub config: TrackerConfig,
}

impl ShellCompleter {
    /// The candidates for the word that ends at `pos`: (value, description), and where that
    /// word starts.
    pub(crate) fn candidates(&self, line: &str, pos: usize) -> (usize, Vec<(String, String)>) {
        let before = line.get(..pos).unwrap_or(line);
        let start = before
            .char_indices()
            .rev()
            .find(|(_, c)| c.is_whitespace())
            .map_or(0, |(i, c)| i + c.len_utf8());
        let prefix = &before[start..];
        // An open quote before the word: nothing sensible to offer.
        let Ok(words) = split_words(&before[..start]) else {
            return (start, Vec::new());
        };
        let all: Vec<(String, String)> = match words.split_first() {
            None => self.spec.names_with_summaries(),
            Some((name, rest)) if (name == "help" || name == "?") && rest.is_empty() => {
                self.spec.names_with_summaries()
            }
            Some((name, rest)) => match self.spec.helper(name) {
                Some(h) => h
                    .argument_values(&CompletionRequest {
                        previous: rest,
                        config: &self.config,
                    })
                    .into_iter()
                    .map(|v| (v, String::new()))
                    .collect(),
                None => Vec::new(),
            },
        };
        let mut seen = std::collections::HashSet::new();
        let matching = all
            .into_iter()
            .filter(|(v, _)| v.starts_with(prefix) && seen.insert(v.clone()))
            .collect();
        (start, matching)
    }
}

impl Completer for ShellCompleter {
    fn complete(&mut self, line: &str, pos: usize) -> CompletionResult {
        let (start, values) = self.candidates(line, pos);
        let suggestions: Vec<Suggestion> = values
            .into_iter()
            .map(|(value, description)| Suggestion {
                value,
                description: (!description.is_empty()).then_some(description),
                span: Span::new(start, pos),
                append_whitespace: true,
                ..Suggestion::default()
            })
            .collect();
        CompletionResult::fresh(suggestions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Helper;

    fn completer() -> ShellCompleter {
        let spec = ShellSpec {
            component: "demo".into(),
            display_name: "Demo".into(),
            version: "1".into(),
            tagline: String::new(),
            role: String::new(),
            shell_type: "DemoShell".into(),
            help_notes: String::new(),
            helpers: vec![
                Helper::new("show_adapters", "adapters", |_, _| Ok(())),
                Helper::new("show_hooks", "hooks", |_, _| Ok(())),
                Helper::new("aggregate", "by a dimension", |_, _| Ok(())).complete(|req| {
                    if req.previous.is_empty() {
                        vec!["component".into(), "user".into(), "host".into()]
                    } else {
                        Vec::new()
                    }
                }),
            ],
        };
        ShellCompleter {
            spec: Arc::new(spec),
            config: TrackerConfig::from_lookup(|k| {
                (k == "SESSION_BUDDY_TRACKING").then(|| "off".to_string())
            }),
        }
    }

    fn values(c: &ShellCompleter, line: &str) -> Vec<String> {
        c.candidates(line, line.len())
            .1
            .into_iter()
            .map(|(v, _)| v)
            .collect()
    }

    #[test]
    fn an_empty_prompt_lists_every_command() {
        let c = completer();
        let all = values(&c, "");
        for name in ["help", "status", "exit", "show_adapters", "aggregate"] {
            assert!(all.contains(&name.to_string()), "{name} in {all:?}");
        }
        assert_eq!(values(&c, "show_"), ["show_adapters", "show_hooks"]);
        assert_eq!(values(&c, "help sh"), ["show_adapters", "show_hooks"]);
    }

    #[test]
    fn helper_arguments_complete_from_the_helper() {
        let c = completer();
        assert_eq!(values(&c, "aggregate "), ["component", "user", "host"]);
        assert_eq!(values(&c, "aggregate h"), ["host"]);
        assert!(values(&c, "aggregate host ").is_empty());
        assert!(values(&c, "show_hooks ").is_empty());
        assert_eq!(c.candidates("aggregate us", 12).0, 10);
    }
}
