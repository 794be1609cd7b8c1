//! `raftcheck check --html`: one self-contained page for a check (inline CSS, SVG and a little
//! script; nothing fetched), so it can be attached to an issue and opened anywhere. It shows
//! the bounds, the statistics and the property table; with a violation, the counterexample as
//! a sequence diagram ([`crate::diagram`]) whose steps, clicked (or walked with the arrow
//! keys), show every server's state side by side, the violated property named at the step
//! where it broke.
//!
//! The script marks the page `data-loaded` once it has run to its end, counts the steps in
//! `data-steps`, and notes the page's laid-out width in `data-scroll-width` and how many pixels
//! of the diagram its box hides (scrolled out of view) in `data-diagram-hidden`:
//! `tests/html_page.rs` checks them in a headless browser.

use std::fmt::Write as _;

use raft_impl::{Entry, MutationSet, Node};
use raft_lincheck::html::escape;
use stateright::Model;

use crate::check::{CheckReport, PropertyOutcome};
use crate::diagram::{self, Broken, Step};
use crate::model::RaftModel;
use crate::state::{Cmd, Pending, PendingQueue, Server, State};
use crate::{probes, properties, render};

/// The page for `report`, a check of `model`; `config` is the bounds as the CLI prints them.
pub fn page(model: &RaftModel, config: &str, report: &CheckReport) -> String {
    let violation = report.first_violation();
    let (class, title) = match violation {
        Some((name, _)) => ("bad", format!("counterexample to \"{name}\"")),
        None if report.all_good() => ("ok", "every property holds".to_string()),
        None => (
            "warn",
            "no violation, but not every property was reached".to_string(),
        ),
    };
    let mut body = format!("<h1 class='{class}'>raftcheck: {}</h1>", escape(&title));
    if let Some(meaning) = violation.and_then(|(name, _)| properties::meaning(name)) {
        let _ = write!(body, "<p class='meaning'>{}</p>", escape(meaning));
    }
    for bug in model.bounds.mutations.iter() {
        let said = probes::configuration(bug).map_or(String::new(), |b| {
            format!(": {} (seen in {})", b.description, b.seen_in)
        });
        let _ = write!(
            body,
            "<p class='bug'>Deliberate bug switched on: <b>{}</b>{}</p>",
            escape(bug.name()),
            escape(&said)
        );
    }
    let mut broken_row = 0;
    if let Some((name, path)) = violation {
        let steps = path.clone().into_vec();
        broken_row = broken_at(model, name, &steps);
        counterexample(&mut body, name, &steps, broken_row);
    }
    summary(&mut body, config, report);
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>raftcheck: {}</title>\
         <style>{STYLE}</style></head><body data-broken='{broken_row}'>{body}\
         <script>{SCRIPT}</script></body></html>\n",
        escape(&title)
    )
}

/// The index of the first state of `steps` that violates the safety property `name` (the
/// checker reports a path ending in a violating state; its first violating state is the one to
/// point at).
fn broken_at(model: &RaftModel, name: &str, steps: &[Step]) -> usize {
    let last = steps.len().saturating_sub(1);
    let Some(property) = model.properties().into_iter().find(|p| p.name == name) else {
        return last;
    };
    let holds = |s: &Step| (property.condition)(model, &s.0);
    steps.iter().position(|s| !holds(s)).unwrap_or(last)
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:20px;color:#222;font-size:14px}\
h1{margin:0 0 8px;font-size:22px}h1.ok{color:#1a7f37}h1.bad{color:#b91c1c}h1.warn{color:#9a6700}\
h2{font-size:17px;margin:22px 0 6px}.bad{color:#b91c1c}\
.trace{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}\
.diagram{overflow-x:auto;border:1px solid #ccc;max-width:100%;min-width:0}\
.meaning{font-size:16px;margin:0 0 6px}.bug{margin:0 0 6px}\
.panel{flex:1 1 420px;position:sticky;top:8px;border:1px solid #ccc;padding:8px 10px}\
.panel h3{margin:0 0 6px;font-size:15px}.panel .line{font-family:monospace;font-size:13px;margin:0 0 8px}\
table{border-collapse:collapse;font-size:13px}td,th{padding:3px 8px;border-bottom:1px solid #eee;\
text-align:left;vertical-align:top}th{font-weight:600}\
.servers td{font-family:monospace}.servers td.chg{background:#fff3bf}\
.e{display:inline-block;border:1px solid #999;border-radius:3px;padding:0 3px;margin:1px}\
.e.c{background:#c6efce;border-color:#1a7f37}.e.x{background:#ffd7d5;border-color:#b91c1c}\
.role-LEADER{color:#15803d;font-weight:bold}.role-candidate{color:#b45309}.role-crashed{color:#888}\
.violation{background:#fde2e2;border:1px solid #b91c1c;padding:4px 8px;margin:0 0 8px;color:#b91c1c;font-weight:bold}\
svg .sel .band{fill:#dbeafe}pre{background:#f6f8fa;padding:8px;overflow-x:auto}\
.props td.ok{color:#1a7f37}.props td.bad{color:#b91c1c;font-weight:bold}";

/// Selects a step (shows its state panel, highlights its row) on a click or an arrow key, and
/// opens the page at the step where the property broke.
const SCRIPT: &str = "(function(){\
var rows=[].slice.call(document.querySelectorAll('svg [data-row]'));\
var panels=[].slice.call(document.querySelectorAll('.state'));\
var current=0;\
function show(k){current=k;\
rows.forEach(function(r){r.classList.toggle('sel',Number(r.getAttribute('data-row'))===k);});\
panels.forEach(function(p){p.hidden=Number(p.getAttribute('data-step'))!==k;});}\
rows.forEach(function(r){r.addEventListener('click',function(){show(Number(r.getAttribute('data-row')));});});\
document.addEventListener('keydown',function(e){\
if(e.key==='ArrowDown'&&current+1<rows.length){show(current+1);e.preventDefault();}\
if(e.key==='ArrowUp'&&current>0){show(current-1);e.preventDefault();}});\
show(Number(document.body.getAttribute('data-broken')));\
document.body.setAttribute('data-steps',String(document.querySelectorAll('svg .step').length));\
document.body.setAttribute('data-scroll-width',String(document.documentElement.scrollWidth));\
var box=document.querySelector('.diagram');\
document.body.setAttribute('data-diagram-hidden',String(box?box.scrollWidth-box.clientWidth:0));\
document.body.setAttribute('data-loaded','yes');})();";

/// The diagram beside the panel of the selected step's state.
fn counterexample(body: &mut String, name: &str, steps: &[Step], broken: usize) {
    let rows = steps.len().saturating_sub(1);
    let _ = write!(
        body,
        "<p>{rows} steps; <span class='bad'>\"{}\" is violated after step {broken}</span>. \
         Click a step, or use the arrow keys, to see every server's state after it.</p>\
         <div class='trace'><div class='diagram'>{}</div><div class='panel'>",
        escape(name),
        diagram::svg(
            steps,
            Some(Broken {
                row: broken,
                property: name
            })
        )
    );
    for (row, w) in steps.iter().enumerate() {
        let previous = row.checked_sub(1).map(|r| &steps[r]);
        let line = match previous {
            Some((last, Some(action))) => render::step(last, *action, &w.0),
            _ => "initial state".to_string(),
        };
        let _ = write!(
            body,
            "<section class='state' data-step='{row}'><h3>After step {row} of {rows}</h3>\
             <p class='line'>{}</p>",
            escape(&line)
        );
        if row == broken {
            let _ = write!(
                body,
                "<p class='violation'>\"{}\" is violated in this state.</p>",
                escape(name)
            );
        }
        servers_table(body, &w.0, previous.map(|p| &p.0));
        network(body, &w.0);
        let _ = write!(
            body,
            "<details><summary>the whole state as text</summary><pre>{}</pre></details></section>",
            escape(&format!("{:?}", w.0))
        );
    }
    body.push_str(
        "</div></div><p>Log entries are <code>index:term:command</code>; \
         <span class='e c'>green</span> at or below the server's commit index, \
         <span class='e x'>red</span> different from the entry committed at that index. \
         Yellow cells changed in the step.</p>",
    );
}

/// One row of the servers table: a label and a server's cell (as HTML).
type Cell = fn(&State, &Server) -> String;

const ROWS: [(&str, Cell); 10] = [
    ("role", |_, s| match &s.node {
        Some(n) => {
            let role = render::role(n);
            format!("<span class='role-{role}'>{role}</span>")
        }
        None => "<span class='role-crashed'>crashed</span>".to_string(),
    }),
    ("term", |_, s| running(s, |n| n.current_term().to_string())),
    ("voted for", |_, s| {
        running(s, |n| render::vote(n.voted_for()))
    }),
    ("log", |st, s| {
        running(s, |n| entries(st, n.log(), n.commit_index() as usize))
    }),
    ("commit index", |_, s| {
        running(s, |n| n.commit_index().to_string())
    }),
    ("applied", |_, s| {
        running(s, |n| n.last_applied().to_string())
    }),
    ("durable term", |_, s| s.durable.current_term.to_string()),
    ("durable vote", |_, s| render::vote(s.durable.voted_for)),
    ("durable log", |st, s| entries(st, &s.durable.log, 0)),
    ("pending writes", |_, s| pending(&s.pending)),
];

/// Every server's state in a column of its own, the cells that changed in the step marked.
fn servers_table(body: &mut String, state: &State, previous: Option<&State>) {
    body.push_str("<table class='servers'><tr><th></th>");
    for id in 0..state.servers.len() {
        let _ = write!(body, "<th>s{id}</th>");
    }
    body.push_str("</tr>");
    let kv = state.servers.iter().any(|s| s.kv.is_some());
    let kv_row: (&str, Cell) = ("kv store", |_, s| {
        s.kv.as_ref()
            .map_or_else(|| "-".to_string(), |kv| escape(&format!("{kv:?}")))
    });
    let rows = ROWS.iter().chain(kv.then_some(&kv_row));
    for (label, cell) in rows {
        let _ = write!(body, "<tr><th>{label}</th>");
        for (id, server) in state.servers.iter().enumerate() {
            let html = cell(state, server);
            let before = previous.map(|p| cell(p, &p.servers[id]));
            let class = if before.is_some_and(|b| b != html) {
                " class='chg'"
            } else {
                ""
            };
            let _ = write!(body, "<td{class}>{html}</td>");
        }
        body.push_str("</tr>");
    }
    body.push_str("</table>");
}

/// A running server's value, or `-` while it is crashed.
fn running(server: &Server, value: impl Fn(&Node<Cmd, MutationSet>) -> String) -> String {
    server.node.as_ref().map_or_else(|| "-".to_string(), value)
}

/// A log as one box per entry: green up to `committed`, red where it differs from the entry
/// the cluster committed at that index.
fn entries(state: &State, log: &[Entry<Cmd>], committed: usize) -> String {
    if log.is_empty() {
        return "empty".to_string();
    }
    let mut html = String::new();
    for (i, entry) in log.iter().enumerate() {
        let conflict = state
            .ghost
            .committed
            .get(i)
            .is_some_and(|c| !c.is(Some(entry)));
        let class = match (conflict, i < committed) {
            (true, _) => "e x",
            (false, true) => "e c",
            (false, false) => "e",
        };
        let _ = write!(
            html,
            "<span class='{class}'>{}:{}:{}</span>",
            i + 1,
            entry.term,
            escape(&entry.command.to_string())
        );
    }
    html
}

/// Deferred and WAL persistence: the writes not yet durable and the sends waiting for them.
fn pending(pending: &PendingQueue) -> String {
    if pending.is_empty() {
        return "none".to_string();
    }
    let items: Vec<String> = pending
        .iter()
        .map(|p| match p {
            Pending::Write(w) => format!("write {}", render::write(w)),
            Pending::Output(e) => format!("send {} to s{}", render::message(&e.msg), e.to),
        })
        .map(|item| escape(&item))
        .collect();
    items.join("<br>")
}

/// The messages in flight.
fn network(body: &mut String, state: &State) {
    let _ = write!(body, "<p><b>In flight</b> ({}):", state.network.len());
    if state.network.is_empty() {
        body.push_str(" none");
    }
    body.push_str("</p><table>");
    for e in &state.network {
        let _ = write!(
            body,
            "<tr><td>s{}→s{}</td><td><code>{}</code></td></tr>",
            e.from,
            e.to,
            escape(&render::message(&e.msg))
        );
    }
    body.push_str("</table>");
}

/// The bounds, the statistics and the property table, as the CLI prints them.
fn summary(body: &mut String, config: &str, report: &CheckReport) {
    let _ = write!(
        body,
        "<h2>Check</h2><pre>{}</pre><p>{} unique states, {} total, max depth {}, {:.2} s{}.</p>\
         <table class='props'><tr><th>kind</th><th>property</th><th>outcome</th></tr>",
        escape(config),
        report.unique_states,
        report.total_states,
        report.max_depth,
        report.elapsed.as_secs_f64(),
        if report.exhaustive {
            " (exhaustive)"
        } else {
            ""
        }
    );
    for p in &report.properties {
        let class = match p.outcome {
            PropertyOutcome::Violated => "bad",
            PropertyOutcome::Holds | PropertyOutcome::ExampleFound => "ok",
            PropertyOutcome::NotRefuted
            | PropertyOutcome::NotReached
            | PropertyOutcome::Unreachable(_) => "",
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td class='{class}'>{}</td></tr>",
            p.kind(),
            escape(p.name),
            escape(&report.outcome_label(p))
        );
    }
    body.push_str("</table>");
    let _ = write!(body, "<p class='verdict'>{}</p>", escape(&report.summary()));
}
