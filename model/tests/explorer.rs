//! `raftcheck explore` serves Stateright's Explorer: it answers HTTP on a local port with the
//! model's status.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// Kills the Explorer when the test ends, pass or fail.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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

#[test]
fn explorer_answers_status_on_a_local_port() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let _server = Server(
        Command::new(env!("CARGO_BIN_EXE_raftcheck"))
            .args([
                "explore",
                "--addr",
                &addr,
                "--servers",
                "2",
                "--max-term",
                "1",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("raftcheck explore starts"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(response) = get(&addr, "/.status") {
            break response;
        }
        assert!(Instant::now() < deadline, "the Explorer never answered");
        sleep(Duration::from_millis(100));
    };
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert!(status.contains("unique_state_count"), "{status}");
    assert!(status.contains("election safety"), "{status}");
    let init = get(&addr, "/.states").expect("initial states");
    assert!(init.contains("follower"), "{init}");
}
