//! The house's rules, checked on the source itself: every module imports
//! only modules below it (so no import cycle can exist), and nothing
//! outside `platform` names a unix-only API.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The top-level modules of `src/`, top floor first. A module may import
/// its own floor's other modules (as long as no cycle forms) and any floor
/// below; never one above.
const FLOORS: &[&[&str]] = &[
    &["commands"],
    &["settings"],
    &["engine"],
    &["report"],
    &["cli"],
    &["journal", "lock", "planfile", "changerecord", "export"],
    &["sim"],
    &["estate"],
    &["steps"],
    &["lync"],
    &["transport", "dns", "xmpp"],
    &["powershell"],
    &[
        "event", "escape", "topology", "secret", "names", "operator", "cancel", "platform", "exit",
    ],
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`steps/records.rs` -> steps).
fn module_of(path: &Path) -> Option<String> {
    let rel = path.strip_prefix(src()).ok()?;
    let first = rel.components().next()?.as_os_str().to_string_lossy();
    let name = first.trim_end_matches(".rs").to_string();
    (name != "lib" && name != "main").then_some(name)
}

/// The code of a file without its unit tests (they may reach anywhere).
fn product_code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("read source");
    if text.contains("#![cfg(test)]") {
        return String::new();
    }
    match text.find("#[cfg(test)]") {
        Some(cut) => text[..cut].to_string(),
        None => text,
    }
}

/// The top-level modules a piece of code names through `crate::`.
fn imports(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // use crate::{a::{b, c}, d}; the items of the outer braces.
            let mut depth = 0usize;
            let mut items = vec![String::new()];
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => items.push(String::new()),
                    _ if depth == 0 => {
                        if let Some(last) = items.last_mut() {
                            last.push(c);
                        }
                    }
                    _ => {}
                }
            }
            for item in items {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.insert(name);
                }
            }
            continue;
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            found.insert(name);
        }
    }
    found
}

fn floor(module: &str) -> Option<usize> {
    FLOORS.iter().position(|f| f.contains(&module))
}

#[test]
fn every_module_imports_only_downwards_and_no_cycle_exists() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut problems = Vec::new();
    for file in &files {
        let Some(module) = module_of(file) else {
            continue;
        };
        let Some(mine) = floor(&module) else {
            problems.push(format!(
                "{}: module `{module}` has no floor in tests/it/house.rs: give it one (and a place in the README's Architecture)",
                file.display()
            ));
            continue;
        };
        for target in imports(&product_code(file)) {
            if target == module {
                continue;
            }
            match floor(&target) {
                None => problems.push(format!(
                    "{}: imports `{target}`, which has no floor",
                    file.display()
                )),
                Some(theirs) if theirs < mine => problems.push(format!(
                    "{}: `{module}` imports `{target}`, a floor above it",
                    file.display()
                )),
                Some(_) => {
                    graph.entry(module.clone()).or_default().insert(target);
                }
            }
        }
    }
    // Same-floor imports must not close a circle.
    fn reaches(
        graph: &BTreeMap<String, BTreeSet<String>>,
        from: &str,
        to: &str,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        if !seen.insert(from.to_string()) {
            return false;
        }
        graph
            .get(from)
            .is_some_and(|next| next.iter().any(|n| n == to || reaches(graph, n, to, seen)))
    }
    for (module, targets) in &graph {
        for target in targets {
            if reaches(&graph, target, module, &mut BTreeSet::new()) {
                problems.push(format!("`{module}` and `{target}` import each other"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "the house's rules are broken:\n{}",
        problems.join("\n")
    );
    // The check itself sees the imports it must see.
    assert!(graph["commands"].contains("engine"), "{graph:?}");
    assert!(graph["steps"].contains("lync"), "{graph:?}");
}

#[test]
fn the_import_reader_reads_groups_and_paths() {
    let found = imports("use crate::{a::b, c::{x, y}, z};\nfn f() { crate::d::e(); }\n");
    assert_eq!(
        found,
        ["a", "c", "d", "z"].iter().map(|s| s.to_string()).collect()
    );
}

#[test]
fn nothing_outside_platform_names_a_unix_only_api() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut found = Vec::new();
    for file in &files {
        if module_of(file).as_deref() == Some("platform") {
            continue;
        }
        let code = product_code(file);
        for (n, line) in code.lines().enumerate() {
            let line = line.trim_start();
            if line.starts_with("//") {
                continue;
            }
            for needle in [
                "std::os::unix",
                "libc::",
                "signal::unix",
                "cfg(unix)",
                "cfg(windows)",
                "cfg!(unix)",
                "cfg!(windows)",
                "\"/proc",
            ] {
                if line.contains(needle) {
                    found.push(format!("{}:{}: {line}", file.display(), n + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "platform-specific code outside src/platform:\n{}",
        found.join("\n")
    );
}
