//! The module graph of `src/`, read from every `crate::` path: each top-level module sits in a
//! layer and imports only from layers below it or beside it, and no import cycle exists.
//! A new top-level module must be given a layer here, which is the point: where it sits is
//! a decision, written down.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Lower layers know nothing of higher ones.
const LAYERS: &[(&str, u8)] = &[
    // The vocabulary: pure, imports nothing of the crate.
    ("model", 0),
    // State, the engine, events, locks, task plumbing.
    ("store", 1),
    ("docker", 1),
    ("bus", 1),
    ("locks", 1),
    ("tasks", 1),
    // The shared services' provisioners (on the store and the engine).
    ("services", 2),
    // Settings, and the one context every operation takes.
    ("config", 3),
    ("ctx", 3),
    // The operations.
    ("apps", 4),
    ("routes", 4),
    ("certs", 4),
    ("auth", 4),
    // Who did what: beside the operations, fed by the web layer and the bus.
    ("audit", 4),
    // Watching the operations' results and telling people: above the operations.
    ("alerts", 5),
    // The admin host's HTTP surface.
    ("backups", 5),
    ("web", 6),
    // Composition: the process and its background tasks.
    ("serve", 7),
    // The command line: `serve`, or a client of the API.
    ("cli", 8),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`src/apps/ops.rs` → `apps`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

/// The top-level modules a file names through `crate::`, comments left out.
fn imports(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if name.is_empty() {
                // `crate::{a, b}`
                if let Some(group) = after.strip_prefix('{') {
                    for part in group.split('}').next().unwrap_or("").split(',') {
                        let part: String = part
                            .trim()
                            .chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                            .collect();
                        if !part.is_empty() {
                            found.insert(part);
                        }
                    }
                }
            } else {
                found.insert(name);
            }
            rest = after;
        }
    }
    found
}

/// Which top-level module imports which.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let module = module_of(&src, &file);
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let edges = graph.entry(module.clone()).or_default();
        for target in imports(&text) {
            if target != module {
                edges.insert(target);
            }
        }
    }
    graph
}

fn layer(module: &str) -> u8 {
    LAYERS
        .iter()
        .find(|(m, _)| *m == module)
        .map(|(_, l)| *l)
        .unwrap_or_else(|| panic!("module `{module}` has no layer in tests/module_graph.rs"))
}

#[test]
fn imports_point_down_the_layers() {
    let graph = graph();
    let mut upward = Vec::new();
    for (from, targets) in &graph {
        for to in targets {
            if layer(to) > layer(from) {
                upward.push(format!(
                    "{from} (layer {}) → {to} (layer {})",
                    layer(from),
                    layer(to)
                ));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that point up:\n{}",
        upward.join("\n")
    );
    assert!(
        graph["model"].is_empty(),
        "model imports {:?}",
        graph["model"]
    );
}

#[test]
fn no_module_cycle_exists() {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let graph = graph();
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(node, &graph, &mut Vec::new(), &mut done) {
            panic!("import cycle: {}", cycle.join(" → "));
        }
    }
}

#[test]
fn the_reader_sees_grouped_and_nested_paths() {
    let found =
        imports("use crate::{bus::Op, ctx::Ctx};\nlet x = crate::model::now(); // crate::web\n");
    assert_eq!(
        found,
        BTreeSet::from(["bus".into(), "ctx".into(), "model".into()])
    );
}

/// Printed with `--nocapture`, for the record: the graph as it is.
#[test]
fn print_the_graph() {
    for (from, targets) in graph() {
        println!(
            "{from} → {}",
            targets.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
}
