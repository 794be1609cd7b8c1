//! The modules of `model/src` import each other without a circle, so each can be read (and
//! changed) knowing only the modules below it.
//!
//! An edge `a → b` is any path `crate::b…` in the code of module `a` (a `use`, grouped or not, or
//! a path written inline); a name the crate root re-exports counts as its defining module.
//! Comments and string literals are left out: a doc link is no import. A module that is a
//! directory counts as one module. `cargo test --release -p raft-model --test module_graph --
//! --nocapture` prints the graph.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

#[test]
fn modules_import_each_other_without_a_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = module_graph(&src);
    for (module, imports) in &graph {
        let imports: Vec<_> = imports.iter().map(String::as_str).collect();
        println!("{module} → {}", imports.join(", "));
    }
    // The scan must see the edges that certainly exist, or an empty graph would pass.
    assert!(graph["model"].contains("state"), "{graph:?}");
    assert!(graph["render"].contains("action"), "{graph:?}");
    if let Some(circle) = find_circle(&graph) {
        panic!("import circle: {}", circle.join(" → "));
    }
}

/// Every module declared in `lib.rs` and the modules its code names.
fn module_graph(src: &Path) -> Graph {
    let root = code(&fs::read_to_string(src.join("lib.rs")).unwrap());
    let modules: BTreeSet<String> = root
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("pub mod")
                .or(l.trim().strip_prefix("mod"))
        })
        .map(|m| m.trim().trim_end_matches(';').to_string())
        .collect();
    let exported = reexports(&root, &modules);
    let resolve = |name: &str| {
        (modules.contains(name).then(|| name.to_string())).or_else(|| exported.get(name).cloned())
    };
    modules
        .iter()
        .map(|module| {
            let mut imports = BTreeSet::new();
            for file in files(src, module) {
                let text = code(&fs::read_to_string(&file).unwrap());
                // In a file directly under `src`, `super` is the crate root.
                let text = if file.parent() == Some(src) {
                    text.replace("super::", "crate::")
                } else {
                    text
                };
                for name in crate_paths(&text) {
                    imports.extend(resolve(&name).filter(|m| m != module));
                }
            }
            (module.clone(), imports)
        })
        .collect()
}

/// The files of `module`: `module.rs`, or every `.rs` file under the directory `module/`.
fn files(src: &Path, module: &str) -> Vec<PathBuf> {
    let file = src.join(format!("{module}.rs"));
    if file.exists() {
        return vec![file];
    }
    let mut found = Vec::new();
    let mut dirs = vec![src.join(module)];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }
    assert!(!found.is_empty(), "no source for module {module}");
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

/// The first segment of every `crate::` path in `code`, and of every item of a group
/// `crate::{a, b::c}`.
fn crate_paths(code: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut names = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        let Some(group) = rest.strip_prefix('{') else {
            names.push(ident(rest));
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
                c if item_start && !c.is_whitespace() => {
                    names.push(ident(&group[i..]));
                    item_start = false;
                }
                _ => {}
            }
        }
    }
    names
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
