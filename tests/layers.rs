//! The dependency graph of `src/`, checked mechanically so the layering stays:
//! - every top-level module imports only modules of a lower layer (so leaves stay leaves, the two
//!   modes never import each other, and the server and the client never import the hub);
//! - inside a module no two files import each other, directly or in a circle, except the one
//!   namespace ↔ socket pair of the server (as in socketioxide); a child that needs a type of
//!   its `mod.rs` means the type wants its own file.
//!
//! Imports are read from the source text (`crate::…`, `super::…`, `use` groups), test modules
//! and comments excluded. `cargo test --test layers -- --nocapture` prints the module graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules by layer, bottom first. A module may import only modules of lower layers.
const LAYERS: &[&[&str]] = &[
    &[
        "sync", "files", "repeats", "queue", "contract", "viewer", "engineio",
    ],
    &["socketio", "media"],
    &["config", "hub", "server"],
    &["client"],
    &["service"],
    &["gateway", "relay"],
];

/// The one file-level circle allowed.
const ALLOWED_CIRCLE: [&str; 2] = ["server/namespace.rs", "server/socket.rs"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its `#[cfg(test)] mod tests` and without comments.
fn code(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        if t == "#[cfg(test)]"
            && lines.peek().is_some_and(|next| {
                let next = next.trim_start();
                ["mod tests", "pub mod tests", "pub(crate) mod tests"]
                    .iter()
                    .any(|m| next.starts_with(m))
            })
        {
            break;
        }
        let line = match line.find("//") {
            Some(i) if !line[..i].contains('"') => &line[..i],
            _ => line,
        };
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The module path of a file relative to `src/`: `server/socket.rs` → `["server", "socket"]`.
fn module_of(rel: &str) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .trim_end_matches(".rs")
        .split('/')
        .map(String::from)
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The file that defines module `path` (`src/a/b.rs` or `src/a/b/mod.rs`), relative to `src/`.
fn file_of(path: &[String]) -> Option<String> {
    if path.is_empty() {
        return Some("lib.rs".into());
    }
    let joined = path.join("/");
    [format!("{joined}.rs"), format!("{joined}/mod.rs")]
        .into_iter()
        .find(|f| src().join(f).is_file())
}

/// The paths of a `use` tree such as `a::{b, c::{d, e}}`, each as its segments.
fn use_tree(tree: &str) -> Vec<Vec<String>> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        let segs: Vec<String> = tree
            .split("::")
            .map(|s| s.split_whitespace().next().unwrap_or("").to_owned())
            .filter(|s| !s.is_empty() && s != "self" && s != "*")
            .collect();
        return vec![segs];
    };
    let head: Vec<String> = tree[..open]
        .split("::")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let inner = tree[open + 1..].trim_end().trim_end_matches('}');
    let (mut items, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    let mut out = vec![head.clone()];
    for item in items.into_iter().filter(|i| !i.trim().is_empty()) {
        for tail in use_tree(item) {
            let mut p = head.clone();
            p.extend(tail);
            out.push(p);
        }
    }
    out
}

/// Every path the code names: `crate::a::b…` and `super::a…` (with `use` groups expanded), as
/// absolute module paths (items included; the caller resolves them to files).
fn paths(code: &str, own: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let is_path = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        let (prefix, base): (&str, Vec<String>) = if rest.starts_with(b"crate::") {
            ("crate::", Vec::new())
        } else if rest.starts_with(b"super::") {
            ("super::", own[..own.len().saturating_sub(1)].to_vec())
        } else {
            i += 1;
            continue;
        };
        if i > 0 && is_path(bytes[i - 1]) {
            i += 1;
            continue;
        }
        i += prefix.len();
        // The rest of the path: identifiers and `::`, and one balanced `{…}` group.
        let start = i;
        let mut depth = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'{' => depth += 1,
                b'}' if depth > 0 => depth -= 1,
                b if depth > 0 || is_path(b) => {
                    let _ = b;
                }
                _ => break,
            }
            i += 1;
            if depth == 0 && bytes[i - 1] == b'}' {
                break;
            }
        }
        for tail in use_tree(&code[start..i]) {
            let mut p = base.clone();
            p.extend(tail);
            out.push(p);
        }
    }
    out
}

struct Graph {
    /// Top-level module → top-level modules it imports.
    modules: BTreeMap<String, BTreeSet<String>>,
    /// File → files of the same top-level module it imports (or declares, for `mod.rs`).
    files: BTreeMap<String, BTreeSet<String>>,
}

fn graph() -> Graph {
    let mut all = Vec::new();
    rust_files(&src(), &mut all);
    let mut g = Graph {
        modules: BTreeMap::new(),
        files: BTreeMap::new(),
    };
    for path in all {
        let rel = path
            .strip_prefix(src())
            .expect("under src")
            .to_string_lossy()
            .replace('\\', "/");
        if rel == "main.rs" || rel == "lib.rs" {
            continue;
        }
        let own = module_of(&rel);
        let top = own[0].clone();
        let text = std::fs::read_to_string(&path).expect("read file");
        let code = code(&text);
        let mods = g.modules.entry(top.clone()).or_default();
        let mut files = BTreeSet::new();
        for p in paths(&code, &own) {
            let Some(first) = p.first() else { continue };
            if *first != top {
                if file_of(&p[..1]).is_some() {
                    mods.insert(first.clone());
                }
                continue;
            }
            // The deepest existing module file along the path (the rest are items).
            let target = (1..=p.len()).rev().find_map(|n| file_of(&p[..n]));
            if let Some(t) = target.filter(|t| *t != rel) {
                files.insert(t);
            }
        }
        // A `mod.rs` (or `a.rs` with children) depends on the children it declares.
        for line in code.lines() {
            let t = line.trim();
            let decl = t
                .strip_prefix("pub mod ")
                .or_else(|| t.strip_prefix("pub(crate) mod "))
                .or_else(|| t.strip_prefix("mod "));
            if let Some(name) = decl.and_then(|d| d.strip_suffix(';')) {
                let mut child = own.clone();
                child.push(name.to_owned());
                if let Some(f) = file_of(&child) {
                    files.insert(f);
                }
            }
        }
        g.files.insert(rel, files);
    }
    g
}

fn layer_of(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|l| l.contains(&module))
        .unwrap_or_else(|| panic!("src/{module} is in no layer of tests/layers.rs"))
}

#[test]
fn modules_import_only_lower_layers() {
    let g = graph();
    let mut wrong = Vec::new();
    for (module, deps) in &g.modules {
        println!(
            "{module} -> {}",
            deps.iter().cloned().collect::<Vec<_>>().join(", ")
        );
        for dep in deps {
            if layer_of(dep) >= layer_of(module) {
                wrong.push(format!("{module} imports {dep}"));
            }
        }
    }
    assert!(wrong.is_empty(), "upward or sideways imports: {wrong:#?}");
}

/// Files of a strongly connected component of more than one file (Tarjan).
fn circles(files: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        files: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.files.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        files,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in files.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

#[test]
fn no_file_circles_but_namespace_and_socket() {
    let g = graph();
    let allowed: Vec<String> = ALLOWED_CIRCLE.iter().map(|s| s.to_string()).collect();
    let wrong: Vec<Vec<String>> = circles(&g.files)
        .into_iter()
        .filter(|c| *c != allowed)
        .collect();
    assert!(wrong.is_empty(), "files that import each other: {wrong:#?}");
}

#[test]
fn the_reader_sees_imports_in_groups_and_ignores_tests_and_comments() {
    let own: Vec<String> = vec!["server".into(), "socket".into()];
    let code = code(
        "use crate::{queue::Class, sync::{lock, read}};\nuse super::engine::Conn;\n// crate::hub\n#[cfg(test)]\nmod tests {\n    use crate::relay;\n}\n",
    );
    let p = paths(&code, &own);
    let firsts: BTreeSet<&str> = p
        .iter()
        .filter_map(|p| p.first())
        .map(String::as_str)
        .collect();
    assert_eq!(firsts, BTreeSet::from(["queue", "server", "sync"]));
    assert!(p.contains(&vec!["server".into(), "engine".into(), "Conn".into()]));
    let files = BTreeMap::from([
        ("a".to_owned(), BTreeSet::from(["b".to_owned()])),
        ("b".to_owned(), BTreeSet::from(["c".to_owned()])),
        ("c".to_owned(), BTreeSet::from(["a".to_owned()])),
        ("d".to_owned(), BTreeSet::from(["a".to_owned()])),
    ]);
    assert_eq!(circles(&files), vec![vec!["a", "b", "c"]]);
}
