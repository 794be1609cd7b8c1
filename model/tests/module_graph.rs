//! The modules of every crate of the workspace import each other without a circle, so each can
//! be read (and changed) knowing only the modules below it.
//!
//! Every source file below a crate's `src` (but the crate root and `bin/`) is a module, named by
//! its path (`runtime::server`). An edge `a → b` is a path `crate::b…` or `super::b…` in the code
//! of module `a` (a `use`, grouped or not, or a path written inline), resolved to the longest
//! module it names; a name the crate root re-exports counts as its defining module. A module's
//! use of its own ancestors (`super::log` in `runtime/server.rs`) is no edge: a parent holds its
//! children, so that is not a circle between peers. Comments and string literals are left out:
//! a doc link is no import. `cargo test --release -p raft-model --test module_graph --
//! --nocapture` prints the graphs.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

/// The crates of the workspace, by their folder beside `model`.
const CRATES: [&str; 5] = ["impl", "model", "proofs", "tests", "tests/lincheck"];

#[test]
fn modules_import_each_other_without_a_circle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut graphs = BTreeMap::new();
    for krate in CRATES {
        let graph = module_graph(&root.join(krate).join("src"));
        println!("{krate}:");
        for (module, imports) in &graph {
            let imports: Vec<_> = imports.iter().map(String::as_str).collect();
            println!("  {module} → {}", imports.join(", "));
        }
        if let Some(circle) = find_circle(&graph) {
            panic!("import circle in {krate}: {}", circle.join(" → "));
        }
        graphs.insert(krate, graph);
    }
    // The scan must see edges that certainly exist, or an empty graph would pass.
    let model = &graphs["model"];
    assert!(model["model"].contains("state"), "{model:?}");
    assert!(model["render"].contains("action"), "{model:?}");
    let core = &graphs["impl"];
    assert!(
        core["runtime::server"].contains("runtime::transport"),
        "{core:?}"
    );
    assert!(core["node"].contains("message"), "{core:?}");
}

/// Every module of the crate whose source is `src`, and the modules its code names.
fn module_graph(src: &Path) -> Graph {
    let root_file = ["lib.rs", "main.rs"]
        .iter()
        .map(|f| src.join(f))
        .find(|f| f.exists())
        .expect("a crate root");
    let files = module_files(src);
    let modules: BTreeSet<String> = files.keys().cloned().collect();
    let exported = reexports(&code(&fs::read_to_string(root_file).unwrap()), &modules);
    files
        .iter()
        .map(|(module, file)| {
            let text = code(&fs::read_to_string(file).unwrap());
            // `super` of `a::b` is `a`; of `a` (in `a.rs` or `a/mod.rs`), the crate root.
            let parent: Vec<&str> = module.split("::").collect();
            let parent = &parent[..parent.len() - 1];
            let mut imports = BTreeSet::new();
            for (prefix, base) in [("crate::", &[][..]), ("super::", parent)] {
                for path in paths_after(&text, prefix) {
                    let full: Vec<&str> = base.iter().copied().chain(path.split("::")).collect();
                    let named = (1..=full.len())
                        .rev()
                        .map(|n| full[..n].join("::"))
                        .find(|m| modules.contains(m))
                        .or_else(|| exported.get(full[0]).cloned());
                    let ancestor = |m: &String| module.starts_with(&format!("{m}::"));
                    if let Some(m) = named.filter(|m| m != module && !ancestor(m)) {
                        imports.insert(m);
                    }
                }
            }
            (module.clone(), imports)
        })
        .collect()
}

/// Every `.rs` file below `src` but the crate root and `bin/`, by module path (none for a crate
/// that is all root, like `proofs`).
fn module_files(src: &Path) -> BTreeMap<String, PathBuf> {
    let mut found = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let relative = path.strip_prefix(src).unwrap().to_path_buf();
            if path.is_dir() {
                if relative != Path::new("bin") {
                    dirs.push(path);
                }
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let mut parts: Vec<String> = relative
                .with_extension("")
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|p| p == "mod") {
                parts.pop();
            }
            if parts == ["lib"] || parts == ["main"] || parts.is_empty() {
                continue;
            }
            found.insert(parts.join("::"), path);
        }
    }
    found
}

/// Names the crate root re-exports (`pub use module::{A, B}`), each with its module.
fn reexports(root: &str, modules: &BTreeSet<String>) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    for statement in root.split(';') {
        let Some(path) = statement.trim().strip_prefix("pub use") else {
            continue;
        };
        let path = path.trim();
        let Some((module, rest)) = path.split_once("::") else {
            continue;
        };
        if modules.contains(module) {
            for name in rest.trim_matches(|c| c == '{' || c == '}').split(',') {
                let name = name.rsplit("::").next().unwrap().trim();
                names.insert(name.to_string(), module.to_string());
            }
        }
    }
    names
}

/// Every path after `prefix` in `code` (`a::b` of `crate::a::b::Name`), and for a group
/// (`crate::a::{b, c::d}`) each of its items joined to what precedes it.
fn paths_after(code: &str, prefix: &str) -> Vec<String> {
    let path = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect::<String>()
            .trim_end_matches(':')
            .to_string()
    };
    let mut paths = Vec::new();
    for (at, _) in code.match_indices(prefix) {
        // `super::super::` and `crate::super::` are not written here; the first one counts.
        if at > 0 && code[..at].ends_with("::") {
            continue;
        }
        let rest = &code[at + prefix.len()..];
        let head = path(rest);
        let after = &rest[head.len()..];
        let Some(group) = after.strip_prefix("::{").or(after.strip_prefix('{')) else {
            paths.push(head);
            continue;
        };
        // The group's top-level items, up to its closing brace.
        let (mut depth, mut item_start) = (0, true);
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => item_start = true,
                c if item_start && depth == 0 && !c.is_whitespace() => {
                    let item = path(&group[i..]);
                    paths.push(if head.is_empty() {
                        item
                    } else {
                        format!("{head}::{item}")
                    });
                    item_start = false;
                }
                _ => {}
            }
        }
    }
    paths
}

/// `source` without comments and with string and character literals emptied, so that only
/// code is scanned for paths.
fn code(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut chars = source.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                let mut last = ' ';
                for c in chars.by_ref() {
                    if last == '*' && c == '/' {
                        break;
                    }
                    last = c;
                }
            }
            '"' => {
                out.push_str("\"\"");
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
            }
            // A character literal ('x', '\n', '"'); a lifetime ('a) has no closing quote.
            '\'' => {
                let mut ahead = chars.clone();
                let literal = match ahead.next() {
                    Some('\\') => true,
                    Some(_) => ahead.next() == Some('\''),
                    None => false,
                };
                if literal {
                    while let Some(c) = chars.next() {
                        match c {
                            '\\' => {
                                chars.next();
                            }
                            '\'' => break,
                            _ => {}
                        }
                    }
                    out.push_str("' '");
                } else {
                    out.push(c);
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// A circle of imports, as the modules along it (the first repeated at the end), if any.
fn find_circle(graph: &Graph) -> Option<Vec<String>> {
    fn visit<'a>(
        graph: &'a Graph,
        module: &'a str,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|m| *m == module) {
            let mut circle: Vec<_> = path[at..].iter().map(|m| m.to_string()).collect();
            circle.push(module.to_string());
            return Some(circle);
        }
        if !done.insert(module) {
            return None;
        }
        path.push(module);
        for next in graph.get(module).into_iter().flatten() {
            if let Some(circle) = visit(graph, next, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|module| visit(graph, module, &mut Vec::new(), &mut done))
}
