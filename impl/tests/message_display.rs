//! The one-line format of a message, which the model checker's traces and the simulator's
//! `RAFT_TRACE` both print: pinned here so that a change to it is a deliberate one.

use raft_impl::{AppendEntries, AppendOutcome, ConflictHint, Entry, Message};

fn append(prev: (u64, u64), entries: &[(u64, &'static str)], commit: u64) -> Message<&'static str> {
    Message::AppendEntries(AppendEntries {
        term: 2,
        prev_log_index: prev.0,
        prev_log_term: prev.1,
        entries: entries
            .iter()
            .map(|&(term, command)| Entry { term, command })
            .collect(),
        leader_commit: commit,
    })
}

fn reply(outcome: AppendOutcome) -> Message<&'static str> {
    Message::AppendEntriesReply { term: 2, outcome }
}

#[test]
fn each_kind_in_one_line() {
    let cases: [(Message<&str>, &str); 8] = [
        (
            Message::RequestVote {
                term: 2,
                last_log_index: 1,
                last_log_term: 1,
            },
            "RequestVote t2 last 1:1",
        ),
        (
            Message::RequestVoteReply {
                term: 2,
                granted: true,
            },
            "RequestVoteReply t2 granted",
        ),
        (
            Message::RequestVoteReply {
                term: 3,
                granted: false,
            },
            "RequestVoteReply t3 denied",
        ),
        (
            append((1, 1), &[(2, "x")], 1),
            r#"AppendEntries t2 prev 1:1 [2:2:"x"] commit 1"#,
        ),
        (
            append((0, 0), &[], 0),
            "AppendEntries t2 prev 0:0 [] commit 0",
        ),
        (
            reply(AppendOutcome::Success { match_index: 2 }),
            "AppendEntriesReply t2 success match 2",
        ),
        (
            reply(AppendOutcome::Conflict(ConflictHint {
                x_term: Some(1),
                x_index: 1,
                x_len: 3,
            })),
            "AppendEntriesReply t2 conflict xterm 1 xindex 1 xlen 3",
        ),
        (
            reply(AppendOutcome::Conflict(ConflictHint {
                x_term: None,
                x_index: 0,
                x_len: 1,
            })),
            "AppendEntriesReply t2 conflict xterm - xindex 0 xlen 1",
        ),
    ];
    for (msg, line) in cases {
        assert_eq!(msg.to_string(), line);
    }
}

#[test]
fn a_long_batch_shows_its_start_and_its_end_unless_alternate() {
    let entries = [(1, "a"), (1, "b"), (1, "c"), (2, "d"), (2, "e"), (2, "f")];
    let long = append((1, 1), &entries, 1);
    assert_eq!(
        long.to_string(),
        r#"AppendEntries t2 prev 1:1 [2:1:"a" 3:1:"b" 4:1:"c" … 7:2:"f"] commit 1"#
    );
    assert_eq!(
        format!("{long:#}"),
        r#"AppendEntries t2 prev 1:1 [2:1:"a" 3:1:"b" 4:1:"c" 5:2:"d" 6:2:"e" 7:2:"f"] commit 1"#
    );
    let four = append((1, 1), &entries[..4], 1);
    assert_eq!(
        four.to_string(),
        r#"AppendEntries t2 prev 1:1 [2:1:"a" 3:1:"b" 4:1:"c" 5:2:"d"] commit 1"#
    );
}

#[test]
fn the_alternate_form_keeps_commands_on_one_line() {
    let msg = Message::AppendEntries(AppendEntries {
        term: 1,
        prev_log_index: 0,
        prev_log_term: 0,
        entries: vec![Entry {
            term: 1,
            command: Some(7),
        }],
        leader_commit: 0,
    });
    assert_eq!(
        format!("{msg:#}"),
        "AppendEntries t1 prev 0:0 [1:1:Some(7)] commit 0"
    );
}
