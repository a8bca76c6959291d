//! The README and `docs/` stay navigable and true to the tree: every relative link (and its
//! `#anchor`) in README.md and docs/*.md points at a file (and heading) that exists, repository
//! paths and `--test`/`--example` names quoted as code exist, every docs page is listed in the
//! docs index, and the README stays short.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

/// Issue 15: the README says what sioedge is and links to docs/; the manual lives in docs/.
const README_MAX_LINES: usize = 150;

/// Top-level directories whose paths, quoted as code in the docs, must exist in the repository.
const REPO_DIRS: &[&str] = &[
    ".ci/",
    "cross/",
    "docs/",
    "examples/",
    "fuzz/",
    "scripts/",
    "src/",
    "target-configs/",
    "tests/",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One Markdown file, split into what the checks read.
struct Doc {
    path: PathBuf,
    /// Link targets written as `[text](target)`, `![alt](target)` or `[label]: target`.
    links: Vec<String>,
    /// Anchors of its headings, as GitHub makes them.
    anchors: HashSet<String>,
    /// Inline code spans and the lines of fenced code blocks.
    code: Vec<String>,
}

impl Doc {
    fn read(path: PathBuf) -> Doc {
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Doc::parse(path, &text)
    }

    fn parse(path: PathBuf, text: &str) -> Doc {
        let mut doc = Doc {
            path,
            links: Vec::new(),
            anchors: HashSet::new(),
            code: Vec::new(),
        };
        let mut fenced = false;
        let mut seen_slugs: Vec<String> = Vec::new();
        for line in text.lines() {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                continue;
            }
            if fenced {
                doc.code.push(line.to_string());
                continue;
            }
            let (prose, spans) = split_code_spans(line);
            doc.code.extend(spans);
            if let Some(title) = heading(line) {
                let slug = slug(title);
                let n = seen_slugs.iter().filter(|s| **s == slug).count();
                doc.anchors.insert(if n == 0 {
                    slug.clone()
                } else {
                    format!("{slug}-{n}")
                });
                seen_slugs.push(slug);
            }
            doc.links.extend(link_targets(&prose));
        }
        doc
    }
}

/// The line with its inline code spans blanked out, and the spans' contents.
fn split_code_spans(line: &str) -> (String, Vec<String>) {
    let mut prose = String::new();
    let mut spans = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        prose.push_str(&rest[..start]);
        let ticks = rest[start..].len() - rest[start..].trim_start_matches('`').len();
        let fence = &rest[start..start + ticks];
        let after = &rest[start + ticks..];
        match after.find(fence) {
            Some(end) => {
                spans.push(after[..end].trim().to_string());
                prose.push(' ');
                rest = &after[end + ticks..];
            }
            None => {
                prose.push_str(fence);
                rest = after;
            }
        }
    }
    prose.push_str(rest);
    (prose, spans)
}

/// The text of an ATX heading (`## Title`), if the line is one.
fn heading(line: &str) -> Option<&str> {
    let hashes = line.len() - line.trim_start_matches('#').len();
    let title = &line[hashes..];
    ((1..=6).contains(&hashes) && title.starts_with(' ')).then(|| title.trim())
}

/// GitHub's heading anchor: lowercase, punctuation other than `-` and `_` dropped, spaces → `-`.
fn slug(title: &str) -> String {
    title
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .flat_map(char::to_lowercase)
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Targets of the inline links, images and reference definitions on one line of prose.
fn link_targets(prose: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = prose;
    while let Some(i) = rest.find("](") {
        let after = &rest[i + 2..];
        let Some(end) = after.find(')') else { break };
        out.extend(after[..end].split_whitespace().next().map(str::to_string));
        rest = &after[end + 1..];
    }
    let trimmed = prose.trim_start();
    if trimmed.starts_with('[')
        && let Some(i) = trimmed.find("]: ")
    {
        out.extend(
            trimmed[i + 3..]
                .split_whitespace()
                .next()
                .map(str::to_string),
        );
    }
    out
}

fn is_external(target: &str) -> bool {
    target.contains("://") || target.starts_with("mailto:")
}

/// README.md and every docs/*.md, README first.
fn docs() -> Vec<Doc> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs/ exists")
        .map(|e| e.expect("docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    paths.sort();
    paths.insert(0, root().join("README.md"));
    paths.into_iter().map(Doc::read).collect()
}

fn shown(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Every broken relative link of `docs`: a missing file, or an anchor its Markdown file lacks.
fn broken_links(docs: &[Doc]) -> Vec<String> {
    let mut broken = Vec::new();
    for doc in docs {
        let dir = doc.path.parent().expect("a file has a directory");
        for target in doc.links.iter().filter(|t| !is_external(t)) {
            let (file, anchor) = target.split_once('#').unwrap_or((target, ""));
            let here = shown(&doc.path);
            let resolved = dir.join(file);
            if !file.is_empty() && !resolved.exists() {
                broken.push(format!("{here}: link {target}: no such file"));
                continue;
            }
            if anchor.is_empty() {
                continue;
            }
            let anchors = if file.is_empty() {
                doc.anchors.clone()
            } else if resolved.extension().is_some_and(|x| x == "md") {
                match docs.iter().find(|d| d.path == resolved) {
                    Some(d) => d.anchors.clone(),
                    None => Doc::read(resolved).anchors,
                }
            } else {
                continue;
            };
            if !anchors.contains(anchor) {
                broken.push(format!(
                    "{here}: link {target}: no heading with anchor #{anchor}"
                ));
            }
        }
    }
    broken
}

/// A path with a placeholder (`NAME.board`, `<arch>`, `sioedge_*.deb`) names no single file.
fn is_placeholder(path: &str) -> bool {
    path.contains(['<', '>', '*', '[', ']', '{', '}', '…'])
        || path.split('/').any(|segment| {
            let stem = segment.split('.').next().unwrap_or("");
            !stem.is_empty() && stem.chars().all(|c| c.is_ascii_uppercase() || c == '_')
        })
}

/// The source of example `name`: its `[[example]]` `path` in Cargo.toml, else Cargo's default.
fn example_path(name: &str) -> String {
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).expect("Cargo.toml");
    let manifest: toml::Table = toml::from_str(&manifest).expect("Cargo.toml parses");
    manifest
        .get("example")
        .and_then(|e| e.as_array())
        .into_iter()
        .flatten()
        .find(|e| e.get("name").and_then(|n| n.as_str()) == Some(name))
        .and_then(|e| e.get("path")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("examples/{name}.rs"))
}

/// Repository paths and `--test`/`--example` targets quoted as code in `docs` that do not exist.
fn missing_code_references(docs: &[Doc]) -> Vec<String> {
    let mut missing = Vec::new();
    for doc in docs {
        for code in &doc.code {
            let words: Vec<&str> = code.split_whitespace().collect();
            if let Some(first) = words.first() {
                let path = first.trim_end_matches([',', ';', ':', ')']);
                if REPO_DIRS.iter().any(|d| path.starts_with(d))
                    && !is_placeholder(path)
                    && !root().join(path).exists()
                {
                    missing.push(format!("{}: `{code}`: no {path}", shown(&doc.path)));
                }
            }
            for pair in words.windows(2) {
                let file = match pair[0] {
                    "--test" => format!("tests/{}.rs", pair[1]),
                    "--example" => example_path(pair[1]),
                    _ => continue,
                };
                if !root().join(&file).exists() {
                    missing.push(format!("{}: `{code}`: no {file}", shown(&doc.path)));
                }
            }
        }
    }
    missing
}

#[test]
fn readme_is_short() {
    let text = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let lines = text.lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md has {lines} lines; keep it at most {README_MAX_LINES} and move the rest to docs/"
    );
}

#[test]
fn relative_links_resolve() {
    let docs = docs();
    assert!(
        docs.iter().map(|d| d.links.len()).sum::<usize>() > 20,
        "the link parser found almost no links: it is broken"
    );
    let broken = broken_links(&docs);
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn quoted_repository_paths_exist() {
    let missing = missing_code_references(&docs());
    assert!(
        missing.is_empty(),
        "stale references:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_docs_page_is_in_the_index() {
    let docs = docs();
    let index = docs
        .iter()
        .find(|d| d.path == root().join("docs/README.md"))
        .expect("docs/README.md, the index");
    let listed: HashSet<&str> = index
        .links
        .iter()
        .map(|t| t.split('#').next().unwrap_or(t))
        .collect();
    let unlisted: Vec<String> = docs
        .iter()
        .filter(|d| d.path.parent() == index.path.parent() && d.path != index.path)
        .filter_map(|d| d.path.file_name()?.to_str().map(str::to_string))
        .filter(|name| !listed.contains(name.as_str()))
        .collect();
    assert!(
        unlisted.is_empty(),
        "not linked from docs/README.md: {unlisted:?}"
    );
}

/// The checks themselves catch what they are for (the files above pass, so show them failing).
#[test]
fn checks_catch_breakage() {
    let dir = root().join("docs");
    let doc = Doc::parse(
        dir.join("example.md"),
        "# Title\n\n## The `hub` (twice)\n\nSee [x](relay.md), [y](nowhere.md), [z](#title),\n\
         [w](#missing), [v](relay.md#no-such-heading), [u](https://example.com/x.md).\n\
         `src/no_such_dir/` and `src/hub/` and `target-configs/boards/NAME.board`\n\
         ```sh\nscripts/no-such-script --flag\ncargo test --test no_such_test\n```\n",
    );
    assert!(doc.anchors.contains("the-hub-twice"), "{:?}", doc.anchors);
    let broken = broken_links(std::slice::from_ref(&doc));
    assert_eq!(broken.len(), 3, "{broken:#?}");
    assert!(broken[0].contains("nowhere.md: no such file"));
    assert!(broken[1].contains("#missing"));
    assert!(broken[2].contains("#no-such-heading"));
    let missing = missing_code_references(std::slice::from_ref(&doc));
    assert_eq!(missing.len(), 3, "{missing:#?}");
    assert!(missing[0].contains("no src/no_such_dir/"));
    assert!(missing[1].contains("no scripts/no-such-script"));
    assert!(missing[2].contains("no tests/no_such_test.rs"));
}

/// Every entry of `src/` appears in the README's layout table, and the table names nothing that is
/// not there: the table is how a newcomer finds their way, so it must match `ls src/`.
#[test]
fn readme_layout_table_matches_src() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let table = readme
        .split("## Crate layout")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("README.md has a `## Crate layout` section");
    let named: BTreeSet<String> = table
        .lines()
        .filter(|l| l.starts_with("| `src/"))
        .flat_map(|l| {
            let first_cell = l.split('|').nth(1).unwrap_or("");
            first_cell
                .split('`')
                .filter(|p| p.starts_with("src/"))
                .map(|p| {
                    p.trim_start_matches("src/")
                        .trim_end_matches('/')
                        .to_owned()
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let present: BTreeSet<String> = std::fs::read_dir(root().join("src"))
        .expect("src/")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let missing: Vec<_> = present.difference(&named).collect();
    let stale: Vec<_> = named.difference(&present).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "README.md's layout table and `ls src/` differ: not in the table {missing:?}, not in src/ {stale:?}"
    );
}
