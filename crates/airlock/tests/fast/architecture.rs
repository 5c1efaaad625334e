//! The layers of `crates/airlock` import downwards only, the domain's modules form no circle,
//! and the two crates every client shares (`airlock-domain`, `airlock-api`) do no IO. Read from
//! the source and the manifests, so a new `use` or dependency that points the wrong way fails
//! here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
const DOMAIN_SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../airlock-domain/src");
const CRATES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// What each top-level module may name (besides itself). `domain` is the crate
/// `airlock-domain`, re-exported under that name.
const ALLOWED: [(&str, &[&str]); 8] = [
    ("domain", &[]),
    ("ports", &["domain"]),
    ("adapters", &["domain", "ports"]),
    ("app", &["domain", "ports"]),
    ("functions", &["domain", "ports", "app"]),
    ("api", &["domain", "ports", "app"]),
    ("host", &["domain", "ports", "app", "functions", "api"]),
    ("config", &["domain", "app", "adapters"]),
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

/// The file's code without its `#[cfg(test)]` part (tests may reach anywhere).
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    match text.find("#[cfg(test)]") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// Every `crate::<name>` the code mentions.
fn crate_refs(code: &str) -> BTreeSet<String> {
    code.match_indices("crate::")
        .map(|(i, m)| {
            code[i + m.len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .filter(|name| !name.is_empty())
        .collect()
}

/// The top-level module a source file belongs to (`lib` for lib.rs).
fn top_module(path: &Path) -> String {
    let rel = path.strip_prefix(SRC).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

#[test]
fn layers_import_downwards_only() {
    let mut files = Vec::new();
    rust_files(Path::new(SRC), &mut files);
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.into_iter().collect();
    let mut checked = 0;
    for file in &files {
        let module = top_module(file);
        if module == "lib" {
            continue;
        }
        let may = allowed
            .get(module.as_str())
            .unwrap_or_else(|| panic!("{module} is not in the layer table: add it"));
        for name in crate_refs(&code(file)) {
            assert!(
                name == module || may.contains(&name.as_str()),
                "{} (layer {module}) names crate::{name}",
                file.display()
            );
        }
        checked += 1;
    }
    assert!(checked > 20, "only {checked} files read");
}

#[test]
fn the_domain_has_no_circles() {
    let dir = Path::new(DOMAIN_SRC).to_path_buf();
    let mut files = Vec::new();
    rust_files(&dir, &mut files);
    // module -> the sibling modules it names
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let rel = file.strip_prefix(&dir).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "lib" {
            continue;
        }
        let code = code(file);
        let mut names: BTreeSet<String> = BTreeSet::new();
        for prefix in ["crate::", "super::"] {
            for (i, m) in code.match_indices(prefix) {
                let name: String = code[i + m.len()..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                names.insert(name);
            }
        }
        // `super::` inside request/ means request itself.
        let siblings: BTreeSet<String> = names
            .into_iter()
            .filter(|n| *n != module && dir.join(format!("{n}.rs")).exists())
            .collect();
        graph.entry(module).or_default().extend(siblings);
    }
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if let Some(i) = path.iter().position(|p| p == node) {
            panic!("circle in the domain: {} -> {node}", path[i..].join(" -> "));
        }
        if done.contains(node) {
            return;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            visit(next, graph, path, done);
        }
        path.pop();
        done.insert(node.to_string());
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        visit(node, &graph, &mut Vec::new(), &mut done);
    }
    assert!(graph.len() >= 8, "{graph:?}");
}

/// The `[dependencies]` of a crate's manifest, by name.
fn dependencies(krate: &str) -> BTreeSet<String> {
    let manifest =
        std::fs::read_to_string(Path::new(CRATES).join(krate).join("Cargo.toml")).unwrap();
    let section = manifest
        .split("\n[dependencies]\n")
        .nth(1)
        .unwrap_or_else(|| panic!("{krate} has no [dependencies]"));
    let section = section.split("\n[").next().unwrap();
    section
        .lines()
        .filter_map(|line| line.split(['.', ' ', '=']).next())
        .filter(|name| !name.is_empty() && !name.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// The pure crates name only data crates: no async runtime, no HTTP, no storage SDK, no token
/// verification. The command line and the web page's types build on them, so what they pull in
/// every client compiles.
#[test]
fn the_shared_crates_do_no_io() {
    const DATA_CRATES: [&str; 11] = [
        "aho-corasick",
        "chrono",
        "csv-core",
        "hex",
        "percent-encoding",
        "schemars",
        "serde",
        "serde_json",
        "sha2",
        "thiserror",
        "uuid",
    ];
    for (krate, also) in [
        ("airlock-domain", &[][..]),
        ("airlock-api", &["airlock-domain"][..]),
    ] {
        let deps = dependencies(krate);
        assert!(
            deps.contains("serde"),
            "{krate}: manifest not read: {deps:?}"
        );
        for dep in &deps {
            assert!(
                DATA_CRATES.contains(&dep.as_str()) || also.contains(&dep.as_str()),
                "{krate} depends on {dep}, which is not a data crate"
            );
        }
    }
    let cli = dependencies("airlock-cli");
    assert!(
        !cli.contains("airlock") && cli.contains("airlock-api"),
        "the command line links the server: {cli:?}"
    );
}
