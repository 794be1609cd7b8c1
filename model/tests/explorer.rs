//! `raftcheck explore` serves Stateright's Explorer behind a front that checks a
//! counterexample's link (`raft_model::explorer`): it answers HTTP on a local port with the
//! model's status, opens a link made under its own flags at the path it names, and refuses a
//! link made under other flags with a page that names them. Both pages are looked at in
//! headless Chromium.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

mod browser;
mod run_cli;

use run_cli::{raftcheck, stderr, stdout, SMALL};

/// Kills the Explorer when the test ends, pass or fail.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An address on the loopback interface with a port no one listens on.
fn free_addr() -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    format!("127.0.0.1:{port}")
}

fn get(addr: &str, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

/// Starts `raftcheck explore` with `args` (which give `--addr addr`) and waits until it
/// answers its status.
fn explore(addr: &str, args: &[&str]) -> (Server, String) {
    let server = Server(
        Command::new(env!("CARGO_BIN_EXE_raftcheck"))
            .arg("explore")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("raftcheck explore starts"),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = get(addr, "/.status").filter(|s| s.contains("\r\n\r\n")) {
            return (server, status);
        }
        assert!(Instant::now() < deadline, "the Explorer never answered");
        sleep(Duration::from_millis(100));
    }
}

#[test]
fn explorer_answers_status_on_a_local_port() {
    let addr = free_addr();
    let args = [&["--addr", &addr][..], &SMALL].concat();
    let (_server, status) = explore(&addr, &args);
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert!(status.contains("unique_state_count"), "{status}");
    assert!(status.contains("election safety"), "{status}");
    let init = get(&addr, "/.states").expect("initial states");
    assert!(init.contains("follower"), "{init}");
}

/// The DOM of `url` once the Explorer's script has fetched the path's steps.
fn render(url: &str, name: &str) -> String {
    let profile = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("explorer-{name}"));
    let extra = ["--virtual-time-budget=10000", "--dump-dom"];
    browser::chromium(url, &profile, &extra).0
}

/// A counterexample's link, printed by `check --json`, opens in the Explorer its
/// `explorer_command` starts at the counterexample's last step. The same link given to an
/// Explorer of the same bounds without the bug is refused, naming `--bug`.
#[test]
fn a_link_opens_only_in_the_explorer_of_its_flags() {
    let addr = free_addr();
    let out = raftcheck(&[
        "check",
        "--bug",
        "vote-not-persisted",
        "--strategy",
        "bfs",
        "--json",
        "--explorer-addr",
        &addr,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("one JSON document");
    let counterexample = &doc["counterexample"];
    let url = counterexample["explorer_url"].as_str().unwrap();
    let command = counterexample["explorer_command"].as_str().unwrap();
    let actions: Vec<&str> = (counterexample["steps"].as_array().unwrap().iter())
        .map(|s| s["action"].as_str().unwrap())
        .collect();
    let path = url.strip_prefix(&format!("http://{addr}")).unwrap();

    let args: Vec<&str> = command.split(' ').skip(2).collect();
    assert_eq!(args[..2], ["--addr", addr.as_str()], "{command}");
    let (_same, _) = explore(&addr, &args);
    let opened = get(&addr, path).unwrap();
    assert!(opened.starts_with("HTTP/1.1 303"), "{opened}");
    let steps = path
        .split("steps=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    assert!(
        opened.contains(&format!("\r\nLocation: /#/steps/{steps}\r\n")),
        "{opened}"
    );
    // The Explorer lists the path's actions in order, and offers the next ones.
    let dom = render(url, "opened");
    let listed = dom
        .split("Path of Actions")
        .nth(1)
        .expect("the path is shown");
    let mut rest = listed;
    for action in &actions {
        let at = rest
            .find(action)
            .unwrap_or_else(|| panic!("{action:?} is not in the path shown, in order: {listed}"));
        rest = &rest[at + action.len()..];
    }
    assert!(rest.contains("Next Action Choices"), "{listed}");

    let other = free_addr();
    let without_bug: Vec<&str> = ["--addr", &other]
        .into_iter()
        .chain(args[2..].iter().copied().filter(|a| !a.contains("vote")))
        .filter(|a| *a != "--bug")
        .collect();
    let (_other, _) = explore(&other, &without_bug);
    let refused = get(&other, path).unwrap();
    assert!(refused.starts_with("HTTP/1.1 409"), "{refused}");
    let row = "<tr><td>--bug</td><td>vote-not-persisted</td><td>absent</td></tr>";
    assert!(refused.contains(row), "{refused}");
    let serves = command.replace(&addr, &other);
    assert!(refused.contains(&serves), "{serves} in {refused}");
    let dom = render(&url.replace(&addr, &other), "refused");
    assert!(dom.contains("This Explorer serves another model"), "{dom}");
    assert!(!dom.contains("Path of Actions"), "{dom}");
}
