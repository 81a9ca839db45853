//! From a service's message nodes (each naming its parent, some not worth keeping) to the
//! messages of a [`Conversation`]: parents first, the shown branch marked, dropped nodes
//! spliced out, times made to run forward.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

use crate::conversation::{FileRef, Message, Note, NoteKind, Notes, Role};

/// A node as a service stores it.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub id: String,
    pub parent: Option<String>,
    pub time: Option<DateTime<Utc>>,
    /// What to keep of it; none when it is dropped (a note says why).
    pub kept: Option<Kept>,
}

#[derive(Debug, Clone)]
pub(crate) struct Kept {
    pub role: Role,
    pub content: String,
    pub model: Option<String>,
    pub metadata: Option<serde_json::Value>,
    pub files: Vec<FileRef>,
    /// Part of an answer (code the model ran, its output): joined to the assistant message
    /// it follows when that message has no other continuation.
    pub continues_answer: bool,
}

/// What [`build`] is told besides the nodes.
pub(crate) struct Shape<'a> {
    pub chat: &'a str,
    /// The node the service showed last (none: the latest leaf).
    pub current: Option<&'a str>,
    /// When a node has no time of its own and no parent to take one from.
    pub start: DateTime<Utc>,
}

/// The messages of the nodes, and what was said about them on the way.
pub(crate) fn build(nodes: Vec<Node>, shape: Shape<'_>, notes: &mut Notes) -> Vec<Message> {
    let note = |notes: &mut Notes, item: &str, kind| {
        notes.push(Note {
            chat: Some(shape.chat.to_owned()),
            item: Some(item.to_owned()),
            kind,
        })
    };
    // One node per id: a repeated id is dropped (the first one stands).
    let mut index: HashMap<String, usize> = HashMap::with_capacity(nodes.len());
    let mut unique = Vec::with_capacity(nodes.len());
    for node in nodes {
        if index.contains_key(&node.id) {
            note(notes, &node.id, NoteKind::RepeatedId);
            continue;
        }
        index.insert(node.id.clone(), unique.len());
        unique.push(node);
    }
    let nodes = unique;
    let parent_of: Vec<Option<usize>> = nodes
        .iter()
        .map(|n| n.parent.as_ref().and_then(|p| index.get(p).copied()))
        .collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    let mut roots = Vec::new();
    for (i, parent) in parent_of.iter().enumerate() {
        match parent {
            Some(p) => children[*p].push(i),
            None => roots.push(i),
        }
    }
    // Siblings oldest first (the service's order where times tie; those without one first).
    let time_key = |i: &usize| (nodes[*i].time.unwrap_or(DateTime::<Utc>::MIN_UTC), *i);
    roots.sort_by_key(time_key);
    for list in &mut children {
        list.sort_by_key(time_key);
    }

    // Parents before children, from the roots: a node in a cycle is never reached.
    let mut order = Vec::with_capacity(nodes.len());
    let mut stack: Vec<usize> = roots.iter().rev().copied().collect();
    let mut reached = vec![false; nodes.len()];
    while let Some(i) = stack.pop() {
        if std::mem::replace(&mut reached[i], true) {
            continue;
        }
        order.push(i);
        stack.extend(children[i].iter().rev());
    }
    for (i, node) in nodes.iter().enumerate() {
        if !reached[i] {
            note(notes, &node.id, NoteKind::Unreachable);
        }
    }

    // The shown branch: the current node's ancestors, and below it the latest child.
    let mut on_path = vec![false; nodes.len()];
    let current = shape
        .current
        .and_then(|c| index.get(c).copied())
        .filter(|c| reached[*c]);
    let mut at = match current {
        Some(c) => Some(c),
        None => roots.last().copied(),
    };
    let mut seen = 0;
    while let Some(i) = at {
        if on_path[i] || seen > nodes.len() {
            break;
        }
        on_path[i] = true;
        seen += 1;
        at = parent_of[i];
    }
    let mut at = current.or(roots.last().copied());
    while let Some(i) = at {
        on_path[i] = true;
        at = children[i].last().copied();
    }

    // The nearest kept ancestor of each node, and how many kept nodes continue each one.
    let mut kept_parent: Vec<Option<usize>> = vec![None; nodes.len()];
    let mut kept_children = vec![0usize; nodes.len()];
    for &i in &order {
        if let Some(p) = parent_of[i] {
            kept_parent[i] = if nodes[p].kept.is_some() {
                Some(p)
            } else {
                kept_parent[p]
            };
        }
        if nodes[i].kept.is_some() {
            if let Some(p) = kept_parent[i] {
                kept_children[p] += 1;
            }
        }
    }

    let mut out: Vec<Message> = Vec::with_capacity(order.len());
    let mut position: Vec<Option<usize>> = vec![None; nodes.len()];
    let mut times: Vec<DateTime<Utc>> = vec![shape.start; nodes.len()];
    for i in order {
        let parent = kept_parent[i];
        let parent_time = parent_of[i].map(|p| times[p]);
        let time = match (nodes[i].time, parent_time) {
            (Some(own), Some(before)) if own <= before => {
                if nodes[i].kept.is_some() {
                    note(notes, &nodes[i].id, NoteKind::TimeOutOfOrder);
                }
                before + Duration::microseconds(1)
            }
            (Some(own), _) => own,
            (None, before) => {
                if nodes[i].kept.is_some() {
                    note(notes, &nodes[i].id, NoteKind::TimeMissing);
                }
                before.map_or(shape.start, |t| t + Duration::microseconds(1))
            }
        };
        times[i] = time;
        let Some(kept) = nodes[i].kept.clone() else {
            continue;
        };
        let parent_at = parent.and_then(|p| position[p]);
        // Code the model ran and its output belong to the answer they are part of.
        if let Some(p) = parent_at.filter(|_| kept.continues_answer) {
            if out[p].role == Role::Assistant && parent.is_some_and(|p| kept_children[p] == 1) {
                let into = &mut out[p];
                if !into.content.is_empty() && !kept.content.is_empty() {
                    into.content.push_str("\n\n");
                }
                into.content.push_str(&kept.content);
                into.files.extend(kept.files);
                into.on_path |= on_path[i];
                position[i] = Some(p);
                continue;
            }
        }
        position[i] = Some(out.len());
        out.push(Message {
            source_id: nodes[i].id.clone(),
            parent: parent_at,
            role: kept.role,
            content: kept.content,
            model: kept.model,
            created_at: time,
            on_path: on_path[i],
            metadata: kept.metadata,
            files: kept.files,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, parent: Option<&str>, role: Option<Role>, secs: Option<i64>) -> Node {
        Node {
            id: id.into(),
            parent: parent.map(Into::into),
            time: secs.map(|s| DateTime::from_timestamp(s, 0).unwrap()),
            kept: role.map(|role| Kept {
                role,
                content: id.to_uppercase(),
                model: None,
                metadata: None,
                files: vec![],
                continues_answer: false,
            }),
        }
    }

    fn shape(current: Option<&str>) -> Shape<'_> {
        Shape {
            chat: "t",
            current,
            start: DateTime::from_timestamp(0, 0).unwrap(),
        }
    }

    #[test]
    fn the_current_branch_is_the_path_and_dropped_nodes_are_spliced_out() {
        let nodes = vec![
            node("b2", Some("a"), Some(Role::Assistant), Some(30)),
            node("root", None, None, None),
            node("a", Some("root"), Some(Role::User), Some(10)),
            node("b1", Some("a"), Some(Role::Assistant), Some(20)),
            node("c", Some("b1"), Some(Role::User), Some(40)),
        ];
        let mut notes = Notes::default();
        let messages = build(nodes, shape(Some("c")), &mut notes);
        let got: Vec<_> = messages
            .iter()
            .map(|m| (m.content.as_str(), m.parent, m.on_path))
            .collect();
        assert_eq!(
            got,
            [
                ("A", None, true),
                ("B1", Some(0), true),
                ("C", Some(1), true),
                ("B2", Some(0), false)
            ]
        );
        assert!(notes.is_empty(), "{notes:?}");
    }

    #[test]
    fn without_a_current_node_the_latest_leaf_is_shown_and_times_run_forward() {
        let nodes = vec![
            node("a", None, Some(Role::User), Some(50)),
            node("b", Some("a"), Some(Role::Assistant), Some(10)),
            node("c", Some("a"), Some(Role::Assistant), None),
        ];
        let mut notes = Notes::default();
        let messages = build(nodes, shape(None), &mut notes);
        let on: Vec<_> = messages
            .iter()
            .filter(|m| m.on_path)
            .map(|m| m.source_id.as_str())
            .collect();
        // c has no time: it sorts before b among siblings, and b is the latest.
        assert_eq!(on, ["a", "b"]);
        assert!(messages.iter().all(|m| m
            .parent
            .is_none_or(|p| messages[p].created_at < m.created_at)));
        let kinds: Vec<_> = notes.iter().map(|n| n.kind).collect();
        assert_eq!(kinds, [NoteKind::TimeMissing, NoteKind::TimeOutOfOrder]);
    }

    #[test]
    fn cycles_and_repeated_ids_are_dropped_with_their_reason() {
        let nodes = vec![
            node("a", None, Some(Role::User), Some(1)),
            node("a", None, Some(Role::User), Some(2)),
            node("x", Some("y"), Some(Role::User), Some(3)),
            node("y", Some("x"), Some(Role::User), Some(4)),
        ];
        let mut notes = Notes::default();
        let messages = build(nodes, shape(None), &mut notes);
        assert_eq!(messages.len(), 1);
        let kinds: Vec<_> = notes.iter().map(|n| n.kind).collect();
        assert_eq!(
            kinds,
            [
                NoteKind::RepeatedId,
                NoteKind::Unreachable,
                NoteKind::Unreachable
            ]
        );
    }
}
