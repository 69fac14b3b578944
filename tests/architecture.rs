//! The layering rules of ARCHITECTURE.md ("What may depend on what"), kept true: every `crate::`
//! path in a module of `src/` names a module on a lower layer (or its own), and no two modules
//! inside one top-level module import each other, directly or around a loop.
//!
//! Hand-written rather than a crate (cargo-modules, cargo-deny's graph): the rule is a table of
//! eleven lines over the paths the source spells, which a plain scan reads exactly; unit tests
//! (`mod tests`, `tests.rs`) are left out, as they may reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// From the bottom up: a module may use the modules on its own line or below.
const LAYERS: &[&[&str]] = &[
    &["telemetry", "digest"],
    &["bake", "recipe", "diagnosis"],
    &["config"],
    &["aws", "store", "templates", "runner"],
    &["services", "builders", "images"],
    &["providers", "manifest"],
    &["bakery", "client"],
    &["admin"],
    &["api"],
    &["startup"],
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// `src/a/b.rs` and `src/a/b/mod.rs` → `["a", "b"]`.
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|l| l == "mod") {
        parts.pop();
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file's code without comments and without its `#[cfg(test)] mod tests { … }`.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests {") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The modules a file's code names: `crate::a::b` → `[a, b]`; `super::x` resolved from the
/// file's own path; names inside `use crate::{a, b}` / `use super::{a, b}` groups.
fn references(me: &[String], code: &str) -> BTreeSet<Vec<String>> {
    let mut out = BTreeSet::new();
    // `a/b.rs` and `a/b/mod.rs` are both module `a::b`: `super` is `a` for either.
    let own = me.to_vec();
    let mut rest = code;
    while rest.contains("crate::") || rest.contains("super::") {
        let at_crate = rest.find("crate::");
        let at_super = rest.find("super::");
        let (start, is_crate) = match (at_crate, at_super) {
            (Some(c), Some(s)) if c < s => (c, true),
            (Some(c), None) => (c, true),
            (_, Some(s)) => (s, false),
            (None, None) => break,
        };
        // Not part of a longer path or identifier (`super::super::x` is read once, from its
        // first `super`).
        let prev = rest[..start].chars().last();
        let standalone = !prev.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
        let mut base: Vec<String> = if is_crate { Vec::new() } else { own.clone() };
        let mut s = &rest[start..];
        if is_crate {
            s = &s["crate::".len()..];
        } else {
            while let Some(t) = s.strip_prefix("super::") {
                base.pop();
                s = t;
            }
        }
        if standalone {
            if let Some(group) = s.strip_prefix('{') {
                let inner = &group[..group.find('}').unwrap_or(group.len())];
                for item in inner.split(',') {
                    let name = ident_at(item.trim());
                    if name.chars().next().is_some_and(|c| c.is_ascii_lowercase()) {
                        let mut p = base.clone();
                        p.push(name.to_string());
                        out.insert(p);
                    }
                }
            } else {
                let mut p = base.clone();
                let mut t = s;
                loop {
                    let name = ident_at(t);
                    if !name.chars().next().is_some_and(|c| c.is_ascii_lowercase()) {
                        break;
                    }
                    p.push(name.to_string());
                    match t[name.len()..].strip_prefix("::") {
                        Some(next) => t = next,
                        None => break,
                    }
                }
                out.insert(p);
            }
        }
        rest = s;
    }
    out
}

struct Graph {
    /// depth-1 and depth-2 edges between existing modules.
    edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
}

fn graph(depth: usize) -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_path(&src, f)).collect();
    let exists = |p: &[String]| modules.iter().any(|m| m.starts_with(p));
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy();
        let me = module_path(&src, file);
        if name == "tests.rs" || name.ends_with("_tests.rs") || me.contains(&"conformance".into()) {
            continue;
        }
        if me.is_empty() || me == ["main"] || me == ["lib"] {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        let from: Vec<String> = me.iter().take(depth).cloned().collect();
        for r in references(&me, &code(&text)) {
            let mut to: Vec<String> = r.into_iter().take(depth).collect();
            while !to.is_empty() && !exists(&to) {
                to.pop();
            }
            if to.is_empty() || to == from || to.len() < depth && depth > 1 {
                continue;
            }
            if depth > 1 && to[0] != from[0] {
                continue;
            }
            edges.entry(from.clone()).or_default().insert(to);
        }
    }
    Graph { edges }
}

#[test]
fn every_module_uses_only_modules_on_lower_layers() {
    let g = graph(1);
    let mut wrong = Vec::new();
    for (from, tos) in &g.edges {
        let Some(lf) = layer(&from[0]) else {
            wrong.push(format!(
                "{} is on no layer: add it to LAYERS and ARCHITECTURE.md",
                from[0]
            ));
            continue;
        };
        for to in tos {
            match layer(&to[0]) {
                Some(lt) if lt <= lf => {}
                Some(_) => wrong.push(format!("{} uses {}, a higher layer", from[0], to[0])),
                None => wrong.push(format!("{} is on no layer", to[0])),
            }
        }
    }
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
}

#[test]
fn modules_inside_each_top_level_module_form_no_cycle() {
    let g = graph(2);
    // Depth-first search for a back edge, reporting the loop it closes.
    fn visit(
        v: &Vec<String>,
        g: &Graph,
        stack: &mut Vec<Vec<String>>,
        done: &mut BTreeSet<Vec<String>>,
        found: &mut Vec<String>,
    ) {
        if done.contains(v) {
            return;
        }
        if let Some(i) = stack.iter().position(|s| s == v) {
            let lp: Vec<String> = stack[i..].iter().chain([v]).map(|m| m.join("::")).collect();
            found.push(lp.join(" -> "));
            return;
        }
        stack.push(v.clone());
        for w in g.edges.get(v).into_iter().flatten() {
            visit(w, g, stack, done, found);
        }
        stack.pop();
        done.insert(v.clone());
    }
    let mut found = Vec::new();
    let mut done = BTreeSet::new();
    for v in g.edges.keys() {
        visit(v, &g, &mut Vec::new(), &mut done, &mut found);
    }
    assert!(found.is_empty(), "import cycles:\n{}", found.join("\n"));
}

#[test]
fn the_scan_sees_paths_as_rustc_does() {
    let me = vec!["providers".to_string(), "aws".to_string()];
    let refs = references(
        &me,
        "use super::recipe::{A, b};\nuse crate::{config, bake::present};\nlet x = super::super::digest::f();",
    );
    let shown: Vec<String> = refs.iter().map(|r| r.join("::")).collect();
    assert_eq!(shown, ["bake", "config", "digest::f", "providers::recipe"],);
}
