//! `raftcheck explore`: Stateright's Explorer, behind a front that checks links.
//!
//! Stateright's Explorer (`CheckerBuilder::serve`) owns its HTTP server and answers only its
//! own routes. The front listens on the user's address, answers [`link::ROUTE`] itself and
//! passes every other request, unchanged, to the Explorer, which serves on a port of the
//! loopback interface that only the front uses. A link that opens the path it was made for in
//! this model is redirected to the Explorer's own view of the path (`/#/steps/…`); any other
//! is refused with a page that says what differs and which command serves the link's model
//! (see [`crate::link`] for why the Explorer cannot tell by itself).

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use raft_lincheck::html::escape;
use stateright::Model;
use thiserror::Error;
use tiny_http::{Header, Method, Request, Response};

use crate::link::{self, Link, Mismatch};
use crate::model::RaftModel;

/// Why the Explorer could not start.
#[derive(Debug, Error)]
pub enum ServeError {
    #[error("cannot listen on the loopback interface for the Explorer: {0}")]
    Inner(std::io::Error),
    #[error("Stateright's Explorer did not answer on {0} (another program took the port?)")]
    NoExplorer(SocketAddr),
    #[error("cannot serve on {addr}: {source}")]
    Front {
        addr: SocketAddr,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Serves the Explorer on `model` at `listener`'s address; returns only if it cannot start.
pub fn serve(model: RaftModel, listener: TcpListener) -> Result<(), ServeError> {
    let front_addr = listener.local_addr().map_err(ServeError::Inner)?;
    // Stateright binds the address it is given itself: a free port is found, then handed over.
    let inner = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(ServeError::Inner)?;
    let explorer = model.clone();
    thread::spawn(move || explorer.checker().threads(1).serve(inner));
    wait_for_explorer(inner)?;
    let front =
        tiny_http::Server::from_listener(listener, None).map_err(|source| ServeError::Front {
            addr: front_addr,
            source,
        })?;
    let model = Arc::new(model);
    for request in front.incoming_requests() {
        let model = Arc::clone(&model);
        // A request may wait long in the Explorer ("run to completion" returns when the whole
        // space is explored), and must not hold up the others.
        thread::spawn(move || answer(request, &model, inner, front_addr));
    }
    Ok(())
}

/// Waits until the Explorer answers its status as this model's, so that no request is passed
/// to another program that took the port between its finding and Stateright's binding.
fn wait_for_explorer(inner: SocketAddr) -> Result<(), ServeError> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let status = forward(inner, &Method::Get, "/.status", &[]);
        if let Ok((200, _, body)) = status {
            return if String::from_utf8_lossy(&body).contains("RaftModel") {
                Ok(())
            } else {
                Err(ServeError::NoExplorer(inner))
            };
        }
        thread::sleep(Duration::from_millis(50));
    }
    Err(ServeError::NoExplorer(inner))
}

fn answer(mut request: Request, model: &RaftModel, inner: SocketAddr, front: SocketAddr) {
    let url = request.url().to_string();
    let (route, query) = url.split_once('?').unwrap_or((&url, ""));
    let response = if route == link::ROUTE {
        open_link(query, model, front)
    } else {
        let mut body = Vec::new();
        let read = request.as_reader().read_to_end(&mut body);
        match read.and_then(|_| forward(inner, request.method(), &url, &body)) {
            Ok((code, headers, body)) => {
                let mut response = Response::from_data(body).with_status_code(code);
                for h in headers {
                    response.add_header(h);
                }
                response
            }
            Err(e) => page(502, "The Explorer did not answer", &escape(&e.to_string())),
        }
    };
    // The browser may have gone; nothing is left to tell it.
    let _ = request.respond(response);
}

/// The answer to a link: a redirect to the Explorer's view of the path, or a page that says
/// why not.
fn open_link(
    query: &str,
    model: &RaftModel,
    front: SocketAddr,
) -> Response<std::io::Cursor<Vec<u8>>> {
    let link = match Link::parse(query) {
        Ok(link) => link,
        Err(e) => {
            return page(
                400,
                "This is not a raftcheck link",
                &format!("<p>{}.</p>", escape(&sentence(&e.to_string()))),
            )
        }
    };
    match link.check(model) {
        Ok(()) => {
            let location = format!("/{}", link.fragment());
            let mut response = Response::from_data(Vec::new()).with_status_code(303);
            response.add_header(header("Location", &location));
            response
        }
        Err(mismatch) => {
            let addr = front.to_string();
            page(
                409,
                "This Explorer serves another model",
                &refusal(&link, &mismatch, model, &addr),
            )
        }
    }
}

/// The body of the page that refuses a link: what differs, and which command serves the link.
fn refusal(link: &Link, mismatch: &Mismatch, model: &RaftModel, addr: &str) -> String {
    let mut s = String::from(
        "<p>A link names its path by the position of each action among those of the state \
         before, and the same positions are another run in another model. So this Explorer does \
         not open it.</p>",
    );
    let here = escape(&link::explore_command(model, addr));
    match mismatch {
        Mismatch::Flags(differ) => {
            s.push_str("<table><tr><th>flag</th><th>in the link</th><th>here</th></tr>");
            for (name, l, h) in differ {
                let _ = write!(
                    s,
                    "<tr><td>--{}</td><td>{}</td><td>{}</td></tr>",
                    escape(name),
                    escape(&link::values_text(l)),
                    escape(&link::values_text(h))
                );
            }
            let _ = write!(
                s,
                "</table><p>Stop this Explorer, serve the link's model with</p><pre>{}</pre>\
                 <p>and open the link again. This Explorer was started as</p><pre>{here}</pre>",
                escape(&link.explore_command(addr)),
            );
        }
        other => {
            let _ = write!(
                s,
                "<p>{}.</p><p>This Explorer was started as</p><pre>{here}</pre>",
                escape(&sentence(&other.to_string()))
            );
        }
    }
    s.push_str("<p><a href='/'>Open this Explorer from the start</a></p>");
    s
}

/// `text` with its first letter in capitals, to stand as a sentence.
fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map_or(String::new(), |c| c.to_uppercase().chain(chars).collect())
}

fn page(code: u16, title: &str, body: &str) -> Response<std::io::Cursor<Vec<u8>>> {
    let html = format!(
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>raftcheck explore: \
         {title}</title><style>body{{font:16px/1.5 system-ui,sans-serif;max-width:60em;\
         margin:2em auto;padding:0 1em;color:#222}}h1{{color:#a40000;font-size:1.5em}}\
         pre{{background:#f4f4f4;padding:.5em;white-space:pre-wrap;overflow-wrap:anywhere}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.2em .6em;\
         text-align:left}}td:first-child{{font-family:monospace}}</style></head><body>\
         <h1>{title}</h1>{body}</body></html>"
    );
    let mut response = Response::from_data(html.into_bytes()).with_status_code(code);
    response.add_header(header("Content-Type", "text/html; charset=utf-8"));
    response
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("a valid header")
}

/// One request to the Explorer and its answer: status code, the headers worth passing on
/// and the body. HTTP/1.0, so that the Explorer closes the connection after the answer and
/// sends no chunks.
fn forward(
    inner: SocketAddr,
    method: &Method,
    url: &str,
    body: &[u8],
) -> std::io::Result<(u16, Vec<Header>, Vec<u8>)> {
    let mut stream = TcpStream::connect(inner)?;
    write!(
        stream,
        "{method} {url} HTTP/1.0\r\nHost: {inner}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP answer");
    let end = (answer.windows(4).position(|w| w == b"\r\n\r\n")).ok_or_else(bad)?;
    let head = String::from_utf8_lossy(&answer[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let code = (lines.next().and_then(|l| l.split(' ').nth(1)))
        .and_then(|c| c.parse().ok())
        .ok_or_else(bad)?;
    // tiny_http sets the framing headers of the answer it sends on.
    let framing = [
        "content-length",
        "transfer-encoding",
        "connection",
        "date",
        "server",
    ];
    let headers = (lines.filter_map(|l| l.split_once(':')))
        .filter(|(name, _)| !framing.contains(&name.trim().to_ascii_lowercase().as_str()))
        .filter_map(|(name, value)| Header::from_bytes(name.trim(), value.trim()).ok())
        .collect();
    Ok((code, headers, answer[end + 4..].to_vec()))
}
