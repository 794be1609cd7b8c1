//! The sequence diagram of a path, as SVG: one lifeline per server, drawn by role (thin grey a
//! follower, dashed orange a candidate, thick green a leader, dotted while crashed) and labelled
//! with the server's term wherever it changes; an arrow per message from the step that sent it
//! to the step that delivered it (dashed to a cross when the network lost it, dashed with no
//! end when it is still in flight after the last step, and a short dashed stub to a cross for a
//! send lost at once because the network had no room under `--max-in-flight`); a shape per local
//! event, a commit included; and a numbered row per step carrying that step's whole line of the
//! text trace, wrapped. A legend under the last row says what each line and mark means. The
//! Explorer shows it for its current path (`RaftModel::as_svg`) and the `--html` page embeds it
//! with clickable rows.
//!
//! Everything is sized from its content, so that nothing is clipped: lanes widen to fit the
//! message labels (up to a limit past which a label is cut short, the whole text in its
//! tooltip), rows grow with their wrapped line, and the SVG is as wide as its lanes plus one
//! column of wrapped text. Text is 12 px monospace: readable at 100 % zoom with the default
//! fonts of a plain browser, and its width predictable enough to compute (no icon fonts: the
//! markers are SVG shapes). It brings its own white ground, since the Explorer's page is dark.

use std::fmt::Write as _;

use raft_impl::{Envelope, NodeId, Role};
use raft_lincheck::html::{escape, truncate};

use crate::action::Action;
use crate::network;
use crate::render;
use crate::state::{Cmd, Server, State};

/// One state of a path and the action taken from it (none for the last), as
/// `stateright::Path::into_vec` lists them.
pub type Step = (State, Option<Action>);

/// Font size of every label, px; the issue that asked for this diagram found 9 px unreadable.
const FONT: f64 = 12.0;
/// Advance of one character of a monospace font at `FONT` (0.6 em, slightly rounded up).
const CHAR: f64 = 7.3;
const ROW: f64 = 32.0;
/// Room above the first row for the server names.
const TOP: f64 = 44.0;
/// Width of the step-number column.
const LEFT: f64 = 44.0;
/// Lane widths: the narrowest keeps event labels apart, the widest stops one long message
/// from stretching the whole diagram (its label is then cut short).
const LANE_MIN: f64 = 150.0;
const LANE_MAX: f64 = 240.0;
/// Space between an arrow label and the lifelines at either end.
const LABEL_PAD: f64 = 14.0;
/// Characters per line of a step's wrapped trace line.
const LINE_CHARS: usize = 64;
/// Height of one line of wrapped text.
const LINE: f64 = 15.0;

/// The property a path violates and the row (step) of the first state violating it.
#[derive(Clone, Copy, Debug)]
pub struct Broken<'a> {
    pub row: usize,
    pub property: &'a str,
}

/// The diagram of `steps` (at least one: the initial state). Row 0 is the initial state, row
/// `i` the state after step `i`; rows carry `data-row` so that a page can make them clickable.
pub fn svg(steps: &[Step], broken: Option<Broken>) -> String {
    let rows = steps.len().saturating_sub(1);
    let lines: Vec<Vec<String>> = std::iter::once("initial state".to_string())
        .chain(
            steps
                .windows(2)
                .filter_map(|w| Some(render::step(&w[0].0, w[0].1?, &w[1].0))),
        )
        .enumerate()
        .map(|(row, line)| match broken.filter(|b| b.row == row) {
            Some(b) => [vec![format!("violates \"{}\":", b.property)], wrap(&line)].concat(),
            None => wrap(&line),
        })
        .collect();
    let arrows = arrows(steps);
    let servers = steps.first().map_or(0, |s| s.0.servers.len());
    let lane = lane_width(&arrows);
    let g = Geometry::new(lane, servers, &lines);
    let width = (g.text_x() + label_width(&"m".repeat(LINE_CHARS)) + 20.0).ceil();
    let legend_y = g.bottom() + ROW / 2.0;
    let height = (legend_y + 3.0 * LINE + 16.0).ceil();
    let mut svg = format!(
        "<svg class='raft-seq' version='1.1' xmlns='http://www.w3.org/2000/svg' \
         width='{width}' height='{height}' viewBox='0 0 {width} {height}' \
         font-family='DejaVu Sans Mono, Menlo, Consolas, monospace' font-size='{FONT}'>\
         <style>.raft-seq [data-row]{{cursor:pointer}}</style>\
         <defs><marker id='raft-seq-arrow' markerWidth='10' markerHeight='10' refX='9' refY='5' \
         orient='auto'><path d='M0,1 L9,5 L0,9 z' fill='#222'/></marker></defs>\
         <rect width='100%' height='100%' fill='#fff'/>"
    );
    for id in 0..servers {
        let _ = write!(
            svg,
            "<text x='{}' y='22' text-anchor='middle' font-size='14' font-weight='bold'>s{id}</text>",
            g.x(id as NodeId)
        );
    }
    let _ = write!(
        svg,
        "<text x='{}' y='22' fill='#555'>step</text>",
        g.text_x()
    );
    row_texts(&mut svg, &g, width, &lines, broken);
    let mut labels = String::new();
    lifelines(&mut svg, &mut labels, &g, steps);
    // Labels go on top of every line, each on a white ground: arrows cross each other.
    for arrow in &arrows {
        arrow.draw(&mut svg, &mut labels, &g, rows);
    }
    for (row, w) in (1..).zip(steps.windows(2)) {
        if let Some(action) = w[0].1 {
            for (id, shape, text) in marks(&w[0].0, action, &w[1].0) {
                let (x, y) = (g.x(id), g.y(row));
                svg.push_str(&shape.svg(x, y));
                label(&mut labels, x + 10.0, y, Anchor::Start, &text, &text);
            }
            no_room(&mut svg, &mut labels, &g, row, action);
        }
    }
    svg.push_str(&labels);
    legend(&mut svg, legend_y);
    svg.push_str("</svg>");
    svg
}

/// `text` cut into lines of at most [`LINE_CHARS`] characters at spaces (a longer word is cut
/// where it must be).
fn wrap(text: &str) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split(' ') {
        let last = lines.last_mut().expect("one line at least");
        let room = LINE_CHARS - last.chars().count().min(LINE_CHARS);
        if !last.is_empty() && word.chars().count() < room {
            last.push(' ');
            last.push_str(word);
            continue;
        }
        if !last.is_empty() {
            lines.push(String::new());
        }
        let chars: Vec<char> = word.chars().collect();
        for (k, chunk) in chars.chunks(LINE_CHARS).enumerate() {
            if k > 0 {
                lines.push(String::new());
            }
            lines.last_mut().expect("a line").extend(chunk);
        }
    }
    lines
}

/// Where things go: lanes of equal width after the step-number column, then the trace lines;
/// each row as tall as its wrapped line.
struct Geometry {
    lane: f64,
    servers: usize,
    /// Each row's top, and the bottom of the last one at the end.
    tops: Vec<f64>,
}

impl Geometry {
    fn new(lane: f64, servers: usize, lines: &[Vec<String>]) -> Geometry {
        let mut tops = vec![TOP - ROW / 2.0];
        for row in lines {
            let height = ROW.max(row.len() as f64 * LINE + 12.0);
            tops.push(tops.last().expect("a top") + height);
        }
        Geometry {
            lane,
            servers,
            tops,
        }
    }

    fn x(&self, id: NodeId) -> f64 {
        LEFT + self.lane * (f64::from(id) + 0.5)
    }

    /// The middle of `row`'s first line: where its arrows and marks are.
    fn y(&self, row: usize) -> f64 {
        self.top(row) + ROW / 2.0
    }

    fn top(&self, row: usize) -> f64 {
        self.tops[row.min(self.tops.len() - 1)]
    }

    fn height(&self, row: usize) -> f64 {
        self.top(row + 1) - self.top(row)
    }

    /// Below the last row.
    fn bottom(&self) -> f64 {
        *self.tops.last().expect("a top")
    }

    fn text_x(&self) -> f64 {
        LEFT + self.lane * self.servers as f64 + 10.0
    }
}

/// Width of `text` cut to at most `max` characters.
fn text_width(text: &str, max: usize) -> f64 {
    text.chars().count().min(max) as f64 * CHAR
}

fn label_width(text: &str) -> f64 {
    text_width(text, usize::MAX)
}

/// Which end of a label its x is.
#[derive(Clone, Copy)]
enum Anchor {
    Start,
    End,
}

/// A label centred on height `y` on a white ground, `shown` in full and `full` as its tooltip.
fn label(svg: &mut String, x: f64, y: f64, anchor: Anchor, shown: &str, full: &str) {
    let width = label_width(shown) + 4.0;
    let (left, anchor) = match anchor {
        Anchor::Start => (x - 2.0, "start"),
        Anchor::End => (x - width + 2.0, "end"),
    };
    let _ = write!(
        svg,
        "<g><title>{}</title><rect x='{left}' y='{}' width='{width}' height='{}' fill='#fff'          fill-opacity='0.9'/><text x='{x}' y='{}' text-anchor='{anchor}'>{}</text></g>",
        escape(full),
        y - FONT / 2.0 - 2.0,
        FONT + 4.0,
        y + FONT / 2.0 - 2.0,
        escape(shown)
    );
}

/// The lane width that fits the longest label of a delivered message between the lanes it
/// spans (a lost message's label is cut short: its line says which message it was).
fn lane_width(arrows: &[Arrow]) -> f64 {
    let needed = arrows
        .iter()
        .filter(|a| matches!(a.end, End::Delivered(_)))
        .map(|a| {
            let span = f64::from(a.env.from.abs_diff(a.env.to).max(1));
            (label_width(&a.label()) + 2.0 * LABEL_PAD) / span
        })
        .fold(LANE_MIN, f64::max);
    needed.min(LANE_MAX).ceil()
}

/// Every row: a band to click (tinted where the property broke), its number and its trace
/// line, wrapped (the violated property first, in red, where it broke).
fn row_texts(
    svg: &mut String,
    g: &Geometry,
    width: f64,
    lines: &[Vec<String>],
    broken: Option<Broken>,
) {
    for (row, line) in lines.iter().enumerate() {
        let y = g.y(row);
        let bad = broken.is_some_and(|b| b.row == row);
        let (class, fill) = match (row, bad) {
            (_, true) => ("step broken", "#fde2e2"),
            (0, false) => ("start", "transparent"),
            _ => ("step", "transparent"),
        };
        let _ = write!(
            svg,
            "<g class='{class}' data-row='{row}'><rect class='band' x='0' y='{}' width='{width}' \
             height='{}' fill='{fill}'/><text x='{}' y='{}' text-anchor='end' fill='#555'>{row}</text>",
            g.top(row),
            g.height(row),
            LEFT - 10.0,
            y + 4.0
        );
        let _ = write!(svg, "<text y='{}'>", y + 4.0);
        for (k, text) in line.iter().enumerate() {
            let dy = if k == 0 { 0.0 } else { LINE };
            let style = if bad && k == 0 {
                " font-weight='bold' fill='#b91c1c'"
            } else {
                ""
            };
            let _ = write!(
                svg,
                "<tspan x='{}' dy='{dy}'{style}>{}</tspan>",
                g.text_x(),
                escape(text)
            );
        }
        svg.push_str("</text></g>");
    }
}

/// What a lifeline shows of its server at a row.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Life {
    Follower,
    Candidate,
    Leader,
    Crashed,
    PreCandidate,
}

impl Life {
    const ALL: [Life; 5] = [
        Life::Follower,
        Life::PreCandidate,
        Life::Candidate,
        Life::Leader,
        Life::Crashed,
    ];

    fn of(server: &Server) -> Life {
        match server.node.as_ref().map(|n| n.role()) {
            None => Life::Crashed,
            Some(Role::Follower) => Life::Follower,
            Some(Role::Candidate) => Life::Candidate,
            Some(Role::Leader) => Life::Leader,
            Some(Role::PreCandidate) => Life::PreCandidate,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Life::Follower => "follower",
            Life::Candidate => "candidate",
            Life::Leader => "leader",
            Life::Crashed => "crashed",
            Life::PreCandidate => "pre-candidate",
        }
    }

    /// The line's stroke: a leader stands out most, a crashed server's line almost vanishes.
    fn style(self) -> &'static str {
        match self {
            Life::Follower => "stroke='#888' stroke-width='2'",
            Life::Candidate => "stroke='#d97706' stroke-width='3' stroke-dasharray='8 4'",
            Life::Leader => "stroke='#15803d' stroke-width='6'",
            Life::Crashed => "stroke='#aaa' stroke-width='2' stroke-dasharray='2 5'",
            Life::PreCandidate => "stroke='#d97706' stroke-width='2' stroke-dasharray='3 3'",
        }
    }
}

/// Each server's lifeline, one segment per run of rows in which it keeps its style and its
/// term: a segment starts at the row of the step that put the server in that state, and a
/// running server's segment is labelled with its term.
fn lifelines(svg: &mut String, labels: &mut String, g: &Geometry, steps: &[Step]) {
    let end = g.bottom();
    for id in 0..g.servers {
        let server = |row: usize| &steps[row].0.servers[id];
        let life = |row: usize| Life::of(server(row));
        let term = |row: usize| server(row).node.as_ref().map(|n| n.current_term());
        let mut start = 0;
        for row in 1..=steps.len() {
            if row < steps.len() && life(row) == life(start) && term(row) == term(start) {
                continue;
            }
            let y2 = if row < steps.len() { g.y(row) } else { end };
            let x = g.x(id as NodeId);
            let y1 = if start == 0 { g.top(0) } else { g.y(start) };
            let _ = write!(
                svg,
                "<line x1='{x}' y1='{y1}' x2='{x}' y2='{y2}' {}/>",
                life(start).style()
            );
            if let Some(t) = term(start) {
                let text = format!("t{t}");
                let full = format!("s{id} is in term {t} from step {start}");
                label(
                    labels,
                    x - 7.0,
                    g.y(start) + 13.0,
                    Anchor::End,
                    &text,
                    &full,
                );
            }
            start = row;
        }
    }
}

/// The sends of the step in `row` that the network lost at once because they did not fit
/// under `--max-in-flight`: a short dashed stub from the sender towards each receiver, ending
/// in an orange cross.
fn no_room(svg: &mut String, labels: &mut String, g: &Geometry, row: usize, action: Action) {
    let Some(from) = action.acting_server() else {
        return;
    };
    let lost = action.lost();
    for to in (0..g.servers as NodeId).filter(|to| lost & (1 << to) != 0) {
        let (x1, y) = (g.x(from), g.y(row) + 6.0);
        let x2 = x1 + (g.x(to) - x1).signum() * g.lane * 0.4;
        let full = format!("s{from}→s{to}: lost as it was sent, no room under --max-in-flight");
        let _ = write!(
            svg,
            "<line x1='{x1}' y1='{y}' x2='{x2}' y2='{y}' stroke='#c2410c' stroke-width='1.5' \
             stroke-dasharray='3 3'><title>{}</title></line>{}",
            escape(&full),
            Shape::Cross("#c2410c").svg(x2, y)
        );
        let anchor = if x2 >= x1 { Anchor::End } else { Anchor::Start };
        let x = if x2 >= x1 { x2 - 8.0 } else { x2 + 8.0 };
        label(labels, x, y + 12.0, anchor, "no room", &full);
    }
}

/// How a message's arrow ends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    /// Delivered in this row.
    Delivered(usize),
    /// Lost in this row: dropped by the network, or gone with a crash.
    Lost(usize),
    /// Still in the network after the last step.
    InFlight,
}

/// One message on the diagram.
struct Arrow {
    env: Envelope<Cmd>,
    /// The row of the step that sent it; `None` if it was in the network from the start.
    sent: Option<usize>,
    end: End,
}

impl Arrow {
    /// The message as its arrow is labelled (the short form: long entry lists elided).
    fn label(&self) -> String {
        self.env.msg.to_string()
    }

    fn draw(&self, svg: &mut String, labels: &mut String, g: &Geometry, rows: usize) {
        let (x1, x2) = (g.x(self.env.from), g.x(self.env.to));
        let tail = |end_row: usize| self.sent.map_or(g.y(end_row) - ROW / 2.0, |r| g.y(r));
        let full = format!(
            "s{}→s{} {}",
            self.env.from,
            self.env.to,
            render::message(&self.env.msg)
        );
        match self.end {
            End::Delivered(row) => {
                let _ = write!(
                    svg,
                    "<line x1='{x1}' y1='{}' x2='{x2}' y2='{}' stroke='#222' stroke-width='1.5' \
                     marker-end='url(#raft-seq-arrow)'><title>{}</title></line>",
                    tail(row),
                    g.y(row),
                    escape(&full)
                );
                self.draw_label(labels, x1, x2, g.y(row), &full);
            }
            End::Lost(row) => {
                let xm = short_of(x1, x2, g);
                let y = g.y(row);
                let _ = write!(
                    svg,
                    "<line x1='{x1}' y1='{}' x2='{xm}' y2='{y}' stroke='#888' stroke-width='1.5' \
                     stroke-dasharray='5 4'><title>lost: {}</title></line>{}",
                    tail(row),
                    escape(&full),
                    Shape::Cross("#888").svg(xm, y)
                );
                self.draw_label(labels, x1, xm, y, &full);
            }
            End::InFlight => {
                let (xm, y) = (short_of(x1, x2, g), g.y(rows) + ROW / 2.0);
                let _ = write!(
                    svg,
                    "<line x1='{x1}' y1='{}' x2='{xm}' y2='{y}' stroke='#888' stroke-width='1.5' \
                     stroke-dasharray='5 4'><title>in flight: {}</title></line>",
                    tail(rows),
                    escape(&full)
                );
            }
        }
    }

    /// The label just above where the arrow ends (one delivery or loss per row, so labels
    /// never share a row), on the side the arrow comes from, cut to the room between the
    /// lifelines.
    fn draw_label(&self, svg: &mut String, x1: f64, x2: f64, y: f64, full: &str) {
        let room = ((x2 - x1).abs() - 2.0 * LABEL_PAD).max(CHAR);
        let chars = (room / CHAR).floor() as usize;
        let (x, anchor) = if x2 >= x1 {
            (x2 - LABEL_PAD, Anchor::End)
        } else {
            (x2 + LABEL_PAD, Anchor::Start)
        };
        let shown = truncate(&self.label(), chars);
        label(svg, x, y - 10.0, anchor, &shown, full);
    }
}

/// Where a message that never arrived stops: half a lane short of its receiver, between two
/// lifelines, so that its end is not mistaken for an event of the server in the middle.
fn short_of(x1: f64, x2: f64, g: &Geometry) -> f64 {
    x2 - (x2 - x1).signum() * g.lane / 2.0
}

/// Every message of the path, matched from the step that sent it to the step that delivered
/// (or lost) it. The network keeps no send times, so identical copies are matched oldest
/// first, as a FIFO channel would deliver them.
fn arrows(steps: &[Step]) -> Vec<Arrow> {
    let mut arrows: Vec<Arrow> = Vec::new();
    for (row, w) in (1..).zip(steps.windows(2)) {
        let (last, action, next) = (&w[0].0, w[0].1, &w[1].0);
        let mut before = last.network.clone();
        if let Some(Action::Deliver { slot, .. } | Action::Drop { slot, .. }) = action {
            if (slot as usize) < before.len() {
                let env = before.remove(slot as usize);
                let end = match action {
                    Some(Action::Deliver { .. }) => End::Delivered(row),
                    _ => End::Lost(row),
                };
                end_oldest(&mut arrows, &env, end);
            }
        }
        // Messages gone without a delivery or a drop: lost with a crash.
        for env in network::sent(&next.network, &before) {
            end_oldest(&mut arrows, env, End::Lost(row));
        }
        for env in network::sent(&before, &next.network) {
            arrows.push(Arrow {
                env: env.clone(),
                sent: Some(row),
                end: End::InFlight,
            });
        }
    }
    arrows
}

/// Ends the oldest arrow of `env` still in flight, or adds one that was in the network from
/// the start.
fn end_oldest(arrows: &mut Vec<Arrow>, env: &Envelope<Cmd>, end: End) {
    match arrows
        .iter_mut()
        .find(|a| a.end == End::InFlight && a.env == *env)
    {
        Some(arrow) => arrow.end = end,
        None => arrows.push(Arrow {
            env: env.clone(),
            sent: None,
            end,
        }),
    }
}

/// A marker for a local event, an SVG shape rather than a glyph so that it shows without any
/// particular font.
#[derive(Clone, Copy)]
enum Shape {
    /// An election timeout: a hollow circle.
    Ring,
    /// A proposal or client request: a blue diamond.
    Diamond,
    /// A flush of a deferred persist: a purple square.
    Square,
    /// A leader replicating, or the network duplicating: a small dot.
    Dot,
    /// A crash (red) or a lost message (grey): a cross.
    Cross(&'static str),
    /// A restart: a green triangle.
    Triangle,
    /// A server's commit index moved up: a green tick.
    Commit,
}

impl Shape {
    fn svg(self, x: f64, y: f64) -> String {
        match self {
            Shape::Ring => format!(
                "<circle cx='{x}' cy='{y}' r='6' fill='#fff' stroke='#d97706' stroke-width='2.5'/>"
            ),
            Shape::Diamond => format!(
                "<path d='M{x},{} L{},{y} L{x},{} L{},{y} z' fill='#2563eb'/>",
                y - 7.0,
                x + 7.0,
                y + 7.0,
                x - 7.0
            ),
            Shape::Square => format!(
                "<rect x='{}' y='{}' width='11' height='11' fill='#7c3aed'/>",
                x - 5.5,
                y - 5.5
            ),
            Shape::Dot => format!("<circle cx='{x}' cy='{y}' r='4' fill='#222'/>"),
            Shape::Cross(color) => format!(
                "<path d='M{0},{1} L{2},{3} M{0},{3} L{2},{1}' stroke='{color}' stroke-width='3'/>",
                x - 6.0,
                y - 6.0,
                x + 6.0,
                y + 6.0
            ),
            Shape::Commit => format!(
                "<path d='M{},{} L{},{} L{},{}' stroke='#15803d' stroke-width='3' fill='none'/>",
                x - 6.0,
                y,
                x - 1.5,
                y + 5.0,
                x + 7.0,
                y - 6.0
            ),
            Shape::Triangle => format!(
                "<path d='M{},{} L{x},{} L{},{} z' fill='#16a34a'/>",
                x - 6.5,
                y + 6.0,
                y - 7.0,
                x + 6.5,
                y + 6.0
            ),
        }
    }
}

/// The markers of one step from `last` to `next`: on which lifeline, which shape, and a short
/// label (the trace line of the row says the rest). Deliveries and drops are drawn as arrows
/// instead. A server whose commit index went up gets a tick, after the action's own mark.
fn marks(last: &State, action: Action, next: &State) -> Vec<(NodeId, Shape, String)> {
    let on_acting = |shape, label: &str| {
        let id = action.acting_server();
        id.map(|id| (id, shape, label.to_string()))
            .into_iter()
            .collect()
    };
    let mut marks: Vec<(NodeId, Shape, String)> = match action {
        Action::Timeout { .. } => on_acting(Shape::Ring, "timeout"),
        Action::Propose { .. } => on_acting(Shape::Diamond, "propose"),
        Action::Request { client, .. } => on_acting(Shape::Diamond, &format!("c{client} request")),
        Action::Flush { .. } => on_acting(Shape::Square, "flush"),
        Action::Replicate { .. } => on_acting(Shape::Dot, "replicate"),
        Action::ContactExpires(_) => on_acting(Shape::Ring, "lease ends"),
        Action::CheckQuorum(_) => on_acting(Shape::Square, "check quorum"),
        Action::Snapshot(_) => on_acting(Shape::Square, "snapshot"),
        Action::Duplicate { from, .. } => vec![(from, Shape::Dot, "duplicated".to_string())],
        Action::Restart(id) => vec![(id, Shape::Triangle, "restart".to_string())],
        Action::Crash { mask, .. } => (0..8u8)
            .filter(|id| mask & (1 << id) != 0)
            .map(|id| {
                // On a lossy network the crashed servers restart in the same step.
                let label = if next.node(id).is_some() {
                    "crash, restart"
                } else {
                    "crash"
                };
                (id, Shape::Cross("#dc2626"), label.to_string())
            })
            .collect(),
        Action::Deliver { .. }
        | Action::Drop { .. }
        | Action::ClientTimeout { .. }
        | Action::Expire => Vec::new(),
    };
    for id in 0..next.servers.len() as NodeId {
        let commit = |s: &State| s.node(id).map(|n| n.commit_index());
        if let (Some(before), Some(after)) = (commit(last), commit(next)) {
            if after > before {
                let text = if marks.iter().any(|m| m.0 == id) {
                    format!("; commit {after}")
                } else {
                    format!("commit {after}")
                };
                marks.push((id, Shape::Commit, text));
            }
        }
    }
    marks
}

/// What the lines and marks mean, under the last row: the lifeline styles, then the arrows
/// (delivered, lost by the network, lost for lack of room, still in flight at the end) and the
/// commit tick.
fn legend(svg: &mut String, y: f64) {
    let mut x = 10.0;
    for life in Life::ALL {
        let (name, style) = (life.name(), life.style());
        let _ = write!(
            svg,
            "<line x1='{x}' y1='{0}' x2='{1}' y2='{0}' {style}/><text x='{2}' y='{3}' fill='#555'>{name}</text>",
            y,
            x + 24.0,
            x + 30.0,
            y + 4.0
        );
        x += 30.0 + label_width(name) + 24.0;
    }
    let y = y + 2.0 * LINE - 6.0;
    let mut x = 10.0;
    let items: [(&str, String); 5] = [
        (
            "delivered",
            "stroke='#222' stroke-width='1.5' marker-end='url(#raft-seq-arrow)'".to_string(),
        ),
        (
            "lost by the network",
            "stroke='#888' stroke-width='1.5' stroke-dasharray='5 4'".to_string(),
        ),
        (
            "lost as sent: no room (--max-in-flight)",
            "stroke='#c2410c' stroke-width='1.5' stroke-dasharray='3 3'".to_string(),
        ),
        (
            "still in flight at the end",
            "stroke='#888' stroke-width='1.5' stroke-dasharray='5 4'".to_string(),
        ),
        ("commit index moves up", String::new()),
    ];
    let mut y = y;
    for (k, (name, style)) in items.iter().enumerate() {
        if k == 3 {
            (x, y) = (10.0, y + LINE + 4.0);
        }
        let end = x + 30.0;
        if style.is_empty() {
            svg.push_str(&Shape::Commit.svg(x + 12.0, y));
        } else {
            let _ = write!(svg, "<line x1='{x}' y1='{y}' x2='{end}' y2='{y}' {style}/>");
        }
        match k {
            1 => svg.push_str(&Shape::Cross("#888").svg(end, y)),
            2 => svg.push_str(&Shape::Cross("#c2410c").svg(end, y)),
            _ => {}
        }
        let _ = write!(
            svg,
            "<text x='{}' y='{}' fill='#555'>{name}</text>",
            end + 10.0,
            y + 4.0
        );
        x = end + 10.0 + label_width(name) + 22.0;
    }
}
