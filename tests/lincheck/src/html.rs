//! A self-contained HTML page (inline CSS and SVG, no network) for a checked history: for a
//! violation, the failing key's operations as bars per client on a time line, the longest
//! partial linearization as numbered points, and the point where it gets stuck.
//!
//! The time axis is compressed: every distinct event time gets one column of equal width, so
//! the overlap between operations (all that matters for linearizability) stays readable even
//! when times span many orders of magnitude. Long histories are cut to a window around the
//! failure; the page says so.

use std::collections::BTreeSet;
use std::fmt::Write;

use crate::checker::{states, Outcome, Violation};
use crate::history::Operation;
use crate::report::{count, Report};

/// Linearized operations shown before the stuck point when the key's history is long.
const CONTEXT: usize = 30;
/// Histories up to this many operations are drawn whole.
const WHOLE: usize = 80;

/// Left margin inside the scrolling time line; the client names sit in a fixed column.
const LEFT: f64 = 30.0;
const LABELS: f64 = 80.0;
const TOP: f64 = 60.0;
const SLOT: f64 = 64.0;
const ROW: f64 = 44.0;
const BAR: f64 = 26.0;
/// Width of a monospace character at the bar font size, to decide how much label fits.
const CHAR: f64 = 6.7;

/// The whole page for `report`; `source` names the history (e.g. its file path).
pub fn render(report: &Report, source: &str) -> String {
    let mut body = String::new();
    let (class, verdict) = match &report.outcome {
        Outcome::Linearizable => ("ok", "linearizable"),
        Outcome::NotLinearizable(_) => ("bad", "NOT linearizable"),
        Outcome::Unknown { .. } => ("unknown", "unknown (time budget exhausted)"),
    };
    let _ = write!(
        body,
        "<h1 class=\"{class}\">{verdict}</h1><p>{} — {} on {}, checked in {:.3} s.</p>",
        escape(source),
        count(report.operations, "operation"),
        count(report.keys, "key"),
        report.elapsed.as_secs_f64()
    );
    match &report.outcome {
        Outcome::Linearizable => {}
        Outcome::Unknown { undecided } => {
            let keys: Vec<String> = undecided.iter().map(|k| escape(&quote(k))).collect();
            let _ = write!(
                body,
                "<p>The budget of {:?} ran out before these keys were decided: {}.</p>",
                report.budget,
                keys.join(", ")
            );
        }
        Outcome::NotLinearizable(v) => violation(&mut body, v),
    }
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>lincheck: {}</title>\
         <style>{STYLE}</style></head><body>{body}<script>{SCRIPT}</script></body></html>\n",
        escape(source)
    )
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:20px;color:#222}\
h1{margin:0 0 6px}h1.ok{color:#1a7f37}h1.bad{color:#cf222e}h1.unknown{color:#9a6700}\
.lines{display:flex;border:1px solid #ccc;margin:12px 0}.timeline{overflow-x:auto;flex:1}\
.stuck{color:#cf222e;font-weight:bold}\
svg text{font-family:ui-monospace,monospace;font-size:11px}\
table{border-collapse:collapse;font-family:ui-monospace,monospace;font-size:12px}\
td,th{padding:2px 10px;border-bottom:1px solid #eee;text-align:left}\
tr.fail td{background:#ffebe9;color:#cf222e}.legend span{margin-right:18px}\
.sw{display:inline-block;width:14px;height:10px;margin-right:4px;border:1px solid #888}";

/// Scrolls the time line so that the stuck point is in view when the page opens.
const SCRIPT: &str = "var s=document.getElementById('stuck');\
if(s){var t=s.closest('.timeline');t.scrollLeft=s.getBBox().x-t.clientWidth*0.6;}";

fn violation(body: &mut String, v: &Violation) {
    let _ = write!(
        body,
        "<p>Smallest failing key {} ({}). The longest partial linearization places {} of them \
         (numbered points); after it {} = {}, and none of the reads that must come next (red) \
         read that.</p>",
        escape(&quote(&v.key)),
        count(v.operations.len(), "operation"),
        v.linearized.len(),
        escape(&quote(&v.key)),
        escape(&quote(&v.state))
    );
    let shown = window(v);
    if shown.len() < v.operations.len() {
        let _ = write!(
            body,
            "<p>Showing the {} operations around the failure (of {}).</p>",
            shown.len(),
            v.operations.len()
        );
    }
    body.push_str(
        "<p class=\"legend\"><span><i class=\"sw\" style=\"background:#b6d4fe\"></i>linearized</span>\
         <span><i class=\"sw\" style=\"background:#ffb3ad\"></i>cannot be placed</span>\
         <span><i class=\"sw\" style=\"background:#e6e6e6\"></i>not reached</span>\
         <span><i class=\"sw\" style=\"background:#fff;border-style:dashed\"></i>never returned</span>\
         <span>time axis: one column per distinct event time</span></p>",
    );
    if let Some(stuck) = v.stuck_before {
        let _ = write!(
            body,
            "<p class=\"stuck\">Stuck (dashed line): one of the red reads had to take effect by time \
             {stuck}, when {} = {}.</p>",
            escape(&quote(&v.key)),
            escape(&quote(&v.state))
        );
    }
    timeline(body, v, &shown);
    table(body, v);
}

/// The operations to draw: all of a short history, else those overlapping the span from the
/// last [`CONTEXT`] linearization points to the returns of the failing reads.
fn window(v: &Violation) -> Vec<usize> {
    let all: Vec<usize> = (0..v.operations.len()).collect();
    if v.operations.len() <= WHOLE {
        return all;
    }
    let points = linearization_points(v);
    let from = points
        .len()
        .checked_sub(CONTEXT)
        .and_then(|i| points.get(i))
        .copied()
        .unwrap_or(0);
    let to = v
        .unplaceable
        .iter()
        .filter_map(|&i| v.operations[i].returned.as_ref().map(|r| r.time))
        .chain(v.stuck_before)
        .max()
        .unwrap_or(u64::MAX);
    all.into_iter()
        .filter(|&i| {
            let op = &v.operations[i];
            op.invoked <= to && op.returned.as_ref().is_none_or(|r| r.time >= from)
        })
        .collect()
}

/// A time at which each linearized operation can take effect, in order: the later of its
/// invoke and the previous point. This stays within the operation's interval because the
/// linearization respects real-time order.
fn linearization_points(v: &Violation) -> Vec<u64> {
    let mut at = 0;
    v.linearized
        .iter()
        .map(|&i| {
            at = at.max(v.operations[i].invoked);
            at
        })
        .collect()
}

/// Where things go on the time line: one column per distinct event time, one row per client.
struct Axis {
    times: Vec<u64>,
    clients: Vec<u64>,
}

impl Axis {
    /// The columns and rows for the `shown` operations of `v` and its stuck point.
    fn new(v: &Violation, shown: &[usize]) -> Axis {
        let ops = &v.operations;
        let times = shown
            .iter()
            .flat_map(|&i| {
                let op = &ops[i];
                std::iter::once(op.invoked).chain(op.returned.as_ref().map(|r| r.time))
            })
            .chain(v.stuck_before)
            .collect::<BTreeSet<u64>>();
        let clients = shown
            .iter()
            .map(|&i| ops[i].client)
            .collect::<BTreeSet<u64>>();
        Axis {
            times: times.into_iter().collect(),
            clients: clients.into_iter().collect(),
        }
    }

    /// The centre of time `t`'s column.
    fn x(&self, t: u64) -> f64 {
        LEFT + SLOT * (self.times.partition_point(|&s| s < t) as f64 + 0.5)
    }

    /// The top of `client`'s row.
    fn y(&self, client: u64) -> f64 {
        TOP + ROW * self.clients.partition_point(|&c| c < client) as f64
    }

    /// Where the bars of operations that never returned end.
    fn right(&self) -> f64 {
        LEFT + SLOT * (self.times.len() as f64 + 1.0)
    }

    fn height(&self) -> f64 {
        TOP + ROW * self.clients.len() as f64 + 10.0
    }

    /// The right end of `op`'s bar.
    fn end(&self, op: &Operation) -> f64 {
        op.returned
            .as_ref()
            .map_or(self.right(), |r| self.x(r.time) + SLOT * 0.35)
    }
}

/// The time line: client names in a fixed column, and a scrolling drawing of the `shown`
/// operations, the linearization and the stuck point.
fn timeline(body: &mut String, v: &Violation, shown: &[usize]) {
    let axis = Axis::new(v, shown);
    let points = linearization_points(v);
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\">",
        axis.right() + 20.0,
        axis.height()
    );
    columns(&mut svg, &axis);
    if let Some(stuck) = v.stuck_before {
        stuck_band(&mut svg, &axis, &points, stuck);
    }
    for &i in shown {
        bar(&mut svg, &axis, v, i);
    }
    linearization(&mut svg, &axis, v, shown, &points);
    for &i in &v.unplaceable {
        cross(&mut svg, &axis, &v.operations[i]);
    }
    svg.push_str("</svg>");
    let _ = write!(
        body,
        "<div class=\"lines\">{}<div class=\"timeline\">{svg}</div></div>",
        client_names(&axis)
    );
}

/// One grid line per column; every other column is labelled with its time.
fn columns(svg: &mut String, axis: &Axis) {
    let height = axis.height();
    for (n, &t) in axis.times.iter().enumerate() {
        let tx = axis.x(t);
        let _ = write!(
            svg,
            "<line x1=\"{tx}\" y1=\"{}\" x2=\"{tx}\" y2=\"{height}\" stroke=\"#f0f0f0\"/>",
            TOP - 8.0
        );
        if n % 2 == 0 {
            let _ = write!(
                svg,
                "<text x=\"{tx}\" y=\"{}\" text-anchor=\"middle\" fill=\"#888\">{t}</text>",
                TOP - 12.0
            );
        }
    }
}

/// The fixed column of client names, beside the scrolling time line.
fn client_names(axis: &Axis) -> String {
    let mut names = format!("<svg width=\"{LABELS}\" height=\"{}\">", axis.height());
    for &c in &axis.clients {
        let _ = write!(
            names,
            "<text x=\"8\" y=\"{}\" fill=\"#444\">client {c}</text>",
            axis.y(c) + BAR / 2.0 + 4.0
        );
    }
    names.push_str("</svg>");
    names
}

/// The band from the last linearization point to the return by which a read had to be
/// placed, ending in the dashed line the page scrolls to.
fn stuck_band(svg: &mut String, axis: &Axis, points: &[u64], stuck: u64) {
    let height = axis.height();
    let from = points.last().map_or(LEFT, |&t| axis.x(t));
    let sx = axis.x(stuck);
    let _ = write!(
        svg,
        "<rect x=\"{from}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#cf222e\" opacity=\"0.08\"/>\
         <line id=\"stuck\" x1=\"{sx}\" y1=\"{}\" x2=\"{sx}\" y2=\"{height}\" stroke=\"#cf222e\" \
         stroke-width=\"2\" stroke-dasharray=\"6 4\"/>\
         <text x=\"{}\" y=\"14\" fill=\"#cf222e\" text-anchor=\"middle\" font-weight=\"bold\">\
         stuck</text>",
        TOP - 8.0,
        (sx - from).max(0.0),
        height - TOP + 8.0,
        TOP - 30.0,
        sx,
    );
}

/// Operation `i`'s bar from invoke to return (dashed to the edge if it never returned),
/// coloured by its part in the verdict, labelled with as much of its action as fits.
fn bar(svg: &mut String, axis: &Axis, v: &Violation, i: usize) {
    let op = &v.operations[i];
    let x0 = axis.x(op.invoked) - SLOT * 0.35;
    let x1 = axis.end(op);
    let dash = if op.returned.is_some() {
        ""
    } else {
        " stroke-dasharray=\"4 3\""
    };
    let fill = if v.unplaceable.contains(&i) {
        "#ffb3ad"
    } else if v.linearized.contains(&i) {
        "#b6d4fe"
    } else if op.returned.is_none() {
        "#ffffff"
    } else {
        "#e6e6e6"
    };
    let top = axis.y(op.client);
    let fits = ((x1 - x0 - 8.0) / CHAR).max(0.0) as usize;
    let _ = write!(
        svg,
        "<g><title>{}</title><rect x=\"{x0}\" y=\"{top}\" width=\"{}\" height=\"{BAR}\" rx=\"4\" \
         fill=\"{fill}\" stroke=\"#666\"{dash}/><text x=\"{}\" y=\"{}\">{}</text></g>",
        escape(&op.to_string()),
        x1 - x0,
        x0 + 4.0,
        top + BAR / 2.0 + 4.0,
        escape(&truncate(&op.action(), fits))
    );
}

/// `label`, cut to `fits` characters with an ellipsis if it is longer. Public so that
/// `raftcheck check --html` cuts its labels by the same rule.
pub fn truncate(label: &str, fits: usize) -> String {
    if label.chars().count() <= fits {
        return label.to_owned();
    }
    let mut s: String = label.chars().take(fits.saturating_sub(1)).collect();
    s.push('…');
    s
}

/// Linearization points, joined in order, numbered by their place in the linearization.
/// Points at the same time are spread out so that each stays visible.
fn linearization(svg: &mut String, axis: &Axis, v: &Violation, shown: &[usize], points: &[u64]) {
    let mut previous: Option<(u64, f64)> = None;
    let mut path = String::new();
    let mut dots = String::new();
    for (n, (&i, &t)) in v.linearized.iter().zip(points).enumerate() {
        let op = &v.operations[i];
        let px = match previous {
            Some((pt, px)) if pt == t => px + 10.0,
            _ => axis.x(t) + 8.0,
        }
        .min(axis.end(op) - 6.0);
        previous = Some((t, px));
        if !shown.contains(&i) {
            continue;
        }
        let py = axis.y(op.client) + BAR + 6.0;
        let _ = write!(
            path,
            "{}{px},{py}",
            if path.is_empty() { "M" } else { " L" }
        );
        let number = (n + 1).to_string();
        let w = 9.0 + 5.5 * number.len() as f64;
        let _ = write!(
            dots,
            "<rect x=\"{}\" y=\"{}\" width=\"{w}\" height=\"13\" rx=\"6.5\" fill=\"#0969da\"/>\
             <text x=\"{px}\" y=\"{}\" text-anchor=\"middle\" fill=\"#fff\" font-size=\"9\">{number}</text>",
            px - w / 2.0,
            py - 6.5,
            py + 3.0,
        );
    }
    let _ = write!(
        svg,
        "<path d=\"{path}\" fill=\"none\" stroke=\"#0969da\" stroke-width=\"1\" opacity=\"0.5\"/>{dots}"
    );
}

/// The mark before an operation that cannot be placed.
fn cross(svg: &mut String, axis: &Axis, op: &Operation) {
    let cx = axis.x(op.invoked) - SLOT * 0.35;
    let cy = axis.y(op.client) + BAR / 2.0;
    let _ = write!(
        svg,
        "<text x=\"{}\" y=\"{}\" fill=\"#cf222e\" font-size=\"16\" font-weight=\"bold\">✗</text>",
        cx - 14.0,
        cy + 5.0
    );
}

fn table(body: &mut String, v: &Violation) {
    body.push_str(
        "<h2>Partial linearization</h2><table><tr><th>#</th><th>client</th><th>operation</th>\
         <th>interval</th><th>value after</th></tr>",
    );
    let after = states(&v.operations, &v.linearized);
    for (n, (&i, value)) in v.linearized.iter().zip(after).enumerate() {
        let op = &v.operations[i];
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            n + 1,
            op.client,
            escape(&op.action()),
            escape(&op.interval()),
            escape(&quote(&value))
        );
    }
    for &i in &v.unplaceable {
        let op = &v.operations[i];
        let _ = write!(
            body,
            "<tr class=\"fail\"><td>✗</td><td>{}</td><td>{}</td><td>{}</td><td>cannot read this: {} = {}</td></tr>",
            op.client,
            escape(&op.action()),
            escape(&op.interval()),
            escape(&quote(&v.key)),
            escape(&quote(&v.state))
        );
    }
    body.push_str("</table>");
}

fn quote(s: &str) -> String {
    format!("{s:?}")
}

/// `s` safe as HTML text or as a quoted attribute value. Public so that `raftcheck check
/// --html`, which writes its own page, escapes by the same rule.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
