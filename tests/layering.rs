//! The library's layers depend downwards only (README "Layout", ARCHITECTURE.md §1): a module may
//! name (`crate::…`) only the modules listed for it here. The compiler enforces `unsafe` and
//! the clocks (Cargo.toml `[lints]`, clippy.toml); this test enforces the import graph, which
//! Rust's module privacy cannot express. Adding an edge is a design decision: change the
//! table together with the README.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Each top-level module of the library and the modules it may use.
const ALLOWED: &[(&str, &[&str])] = &[
    ("wire", &[]),
    ("secret", &[]),
    ("pool", &[]),
    ("crypto", &["secret"]),
    ("ipsec", &["crypto", "secret", "wire"]),
    ("ike", &["crypto", "ipsec", "pool", "secret", "wire"]),
    // The configuration parses the IKE layer's value types (identities, the unique policy).
    ("config", &["ike", "secret"]),
    ("io", &["wire"]),
    ("api", &["config", "io", "secret"]),
    // Client configuration: renders a validated server; finds it in the file or the API state.
    ("onboard", &["api", "config", "secret"]),
    (
        "daemon",
        &[
            "api", "config", "crypto", "ike", "io", "ipsec", "onboard", "pool", "secret", "wire",
        ],
    ),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The Rust files of top-level module `name` (`src/name.rs` or everything under `src/name/`).
fn files(name: &str) -> Vec<PathBuf> {
    let file = src().join(format!("{name}.rs"));
    if file.is_file() {
        return vec![file];
    }
    let mut out = Vec::new();
    let mut dirs = vec![src().join(name)];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir:?}: {e}")) {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out
}

/// The top-level modules `text` names as `crate::X`.
fn used_modules(text: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        // `ipsec_server::…` is how tests name the crate; `crate::` inside an identifier
        // (`my_crate::`) is not a path into this crate.
        let before = rest[..i].chars().next_back();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        used.insert(name);
    }
    used
}

#[test]
fn every_module_of_the_library_is_in_the_table() {
    let lib = std::fs::read_to_string(src().join("lib.rs")).expect("src/lib.rs");
    let declared: BTreeSet<&str> = lib
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';'))
        .collect();
    let listed: BTreeSet<&str> = ALLOWED.iter().map(|(m, _)| *m).collect();
    assert_eq!(declared, listed);
}

#[test]
fn dependencies_point_down_only() {
    let modules: BTreeSet<&str> = ALLOWED.iter().map(|(m, _)| *m).collect();
    let mut violations = Vec::new();
    for (module, allowed) in ALLOWED {
        let files = files(module);
        assert!(!files.is_empty(), "no files for {module}");
        for file in files {
            let text = std::fs::read_to_string(&file).expect("readable");
            for used in used_modules(&text) {
                if used != *module
                    && modules.contains(used.as_str())
                    && !allowed.contains(&used.as_str())
                {
                    violations.push(format!("{} uses crate::{used}", file.display()));
                }
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn the_check_sees_a_forbidden_import() {
    let used = used_modules("use crate::config::Config;\nlet x = my_crate::wire::y;\n");
    assert_eq!(used, BTreeSet::from(["config".to_owned()]));
}
