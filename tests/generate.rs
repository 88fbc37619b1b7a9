//! `ipsec-server generate` as packaging calls it (scripts/build-deb): the real binary writes
//! the man pages and completion scripts under the names the system looks for, prints each
//! path it wrote, and fails with a message, not a panic, when it cannot write. What the pages
//! and scripts contain is tested beside the generator (`src/generate.rs`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn generate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ipsec-server"))
        .arg("generate")
        .args(args)
        .output()
        .expect("ipsec-server runs")
}

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ipsec-server-gen-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn listed(out: &Output) -> Vec<PathBuf> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(PathBuf::from)
        .collect()
}

#[test]
fn man_pages_land_in_the_directory_given_and_are_listed() {
    let dir = scratch("man");
    let out = generate(&["man", "--out", dir.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written = listed(&out);
    for name in [
        "ipsec-server.8",
        "ipsec-server-run.8",
        "ipsec-server-status.8",
    ] {
        assert!(
            written.contains(&dir.join(name)),
            "{name} not in {written:?}"
        );
    }
    for page in &written {
        let text = std::fs::read_to_string(page).expect("written");
        assert!(text.contains(".TH ipsec"), "{}", page.display());
    }
    std::fs::remove_dir_all(&dir).expect("cleaned up");
}

#[test]
fn completions_are_named_for_each_shell_and_go_to_stdout_without_out() {
    let dir = scratch("comp");
    for (shell, name, marker) in [
        ("bash", "ipsec-server", "complete -F"),
        ("zsh", "_ipsec-server", "#compdef ipsec-server"),
        ("fish", "ipsec-server.fish", "complete -c ipsec-server"),
    ] {
        let out = generate(&["completions", shell, "--out", dir.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(listed(&out), vec![dir.join(name)]);
        let script = std::fs::read_to_string(dir.join(name)).expect("written");
        assert!(script.contains(marker), "{shell}: no {marker:?}");
        let to_stdout = generate(&["completions", shell]);
        assert_eq!(String::from_utf8_lossy(&to_stdout.stdout), script);
    }
    std::fs::remove_dir_all(&dir).expect("cleaned up");
}

#[test]
fn an_unwritable_directory_is_an_error_not_a_panic() {
    let file = scratch("file");
    std::fs::write(&file, b"not a directory").expect("file");
    let out = generate(&[
        "man",
        "--out",
        Path::new(&file).join("man8").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("generate: cannot create"), "{stderr}");
    std::fs::remove_file(&file).expect("cleaned up");
}
