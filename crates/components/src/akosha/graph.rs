//! `graph`: who uses which component where, user → component → host.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use session_buddy_events::Session;

/// user → component → host, with session counts at every level.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub name: String,
    pub sessions: u64,
    pub children: Vec<Node>,
}

/// The user → component → host tree; at each level the most sessions first, then the name.
pub(crate) fn usage_graph(sessions: &[Session]) -> Vec<Node> {
    type Hosts<'a> = BTreeMap<&'a str, u64>;
    let mut tree: BTreeMap<&str, BTreeMap<&str, Hosts<'_>>> = BTreeMap::new();
    for s in sessions {
        *tree
            .entry(&s.username)
            .or_default()
            .entry(&s.component)
            .or_default()
            .entry(&s.hostname)
            .or_default() += 1;
    }
    fn ranked(mut nodes: Vec<Node>) -> Vec<Node> {
        nodes.sort_by(|a, b| {
            b.sessions
                .cmp(&a.sessions)
                .then_with(|| a.name.cmp(&b.name))
        });
        nodes
    }
    ranked(
        tree.into_iter()
            .map(|(user, components)| {
                let children = ranked(
                    components
                        .into_iter()
                        .map(|(component, hosts)| {
                            let hosts = ranked(
                                hosts
                                    .into_iter()
                                    .map(|(h, n)| Node {
                                        name: h.to_string(),
                                        sessions: n,
                                        children: Vec::new(),
                                    })
                                    .collect(),
                            );
                            Node {
                                name: component.to_string(),
                                sessions: hosts.iter().map(|h| h.sessions).sum(),
                                children: hosts,
                            }
                        })
                        .collect(),
                );
                Node {
                    name: user.to_string(),
                    sessions: children.iter().map(|c| c.sessions).sum(),
                    children,
                }
            })
            .collect(),
    )
}

pub(super) fn render_graph(users: &[Node]) -> String {
    if users.is_empty() {
        return "No sessions recorded yet.\n".into();
    }
    let components: std::collections::BTreeSet<&str> = users
        .iter()
        .flat_map(|u| u.children.iter().map(|c| c.name.as_str()))
        .collect();
    let hosts: std::collections::BTreeSet<&str> = users
        .iter()
        .flat_map(|u| u.children.iter())
        .flat_map(|c| c.children.iter().map(|h| h.name.as_str()))
        .collect();
    let user_edges: usize = users.iter().map(|u| u.children.len()).sum();
    let host_edges: usize = users
        .iter()
        .flat_map(|u| u.children.iter())
        .map(|c| c.children.len())
        .sum();
    let mut out = format!(
        "user → component → host ({} users, {} components, {} hosts; {user_edges} user→component and {host_edges} component→host edges; counts are sessions):\n",
        users.len(),
        components.len(),
        hosts.len()
    );
    for u in users {
        let _ = writeln!(out, "{} ({})", u.name, u.sessions);
        for (ci, c) in u.children.iter().enumerate() {
            let last_c = ci + 1 == u.children.len();
            let _ = writeln!(
                out,
                "{} {} ({})",
                if last_c { "└─" } else { "├─" },
                c.name,
                c.sessions
            );
            for (hi, h) in c.children.iter().enumerate() {
                let last_h = hi + 1 == c.children.len();
                let _ = writeln!(
                    out,
                    "{}  {} {} ({})",
                    if last_c { " " } else { "│" },
                    if last_h { "└─" } else { "├─" },
                    h.name,
                    h.sessions
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reading::testdata::*;

    #[test]
    fn graph_edges_and_tree() {
        let mut b = session("b-1", "oneiric", 0, 1.0);
        b.username = "bob".into();
        let mut a3 = session("a-3", "akosha", 2, 1.0);
        a3.hostname = "host-b".into();
        let sessions = vec![
            session("a-1", "akosha", 0, 1.0),
            session("a-2", "akosha", 1, 1.0),
            a3,
            session("a-4", "oneiric", 3, 1.0),
            b,
        ];
        let g = usage_graph(&sessions);
        assert_eq!(g.len(), 2);
        assert_eq!((g[0].name.as_str(), g[0].sessions), ("alice", 4));
        assert_eq!(
            (g[0].children[0].name.as_str(), g[0].children[0].sessions),
            ("akosha", 3)
        );
        assert_eq!(
            g[0].children[0]
                .children
                .iter()
                .map(|h| (h.name.as_str(), h.sessions))
                .collect::<Vec<_>>(),
            [("host-a", 2), ("host-b", 1)]
        );
        assert_eq!(
            render_graph(&g),
            "user → component → host (2 users, 2 components, 2 hosts; 3 user→component and 4 component→host edges; counts are sessions):\n\
             alice (4)\n\
             ├─ akosha (3)\n\
             │  ├─ host-a (2)\n\
             │  └─ host-b (1)\n\
             └─ oneiric (1)\n   \
             └─ host-a (1)\n\
             bob (1)\n\
             └─ oneiric (1)\n   \
             └─ host-a (1)\n"
        );
    }
}
