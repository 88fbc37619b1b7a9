//! The binary's `--log-format` as an operator meets it: under systemd (stderr is the stream
//! `JOURNAL_STREAM` names) lines carry the sd-daemon priority without being asked; elsewhere
//! they do not; `--log-format json` prints one object per line. No root needed: the `client`
//! command fails, and logs an error, before it touches the network.

use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

const BIN: &str = env!("CARGO_BIN_EXE_ipsec-server");

/// Runs `client` (after the global `args`) with a PSK file that does not exist, stderr into a
/// file that `JOURNAL_STREAM` names or not; returns what it logged.
fn failing_client(args: &[&str], journal_stream: JournalStream) -> String {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "ipsec-server-logfmt-{}-{}",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    ));
    let file = std::fs::File::create(&path).unwrap();
    let meta = file.metadata().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .args([
            "client",
            "--remote",
            "192.0.2.1",
            "--id",
            "x",
            "--psk-file",
            "/nonexistent/psk",
            "--remote-ts",
            "10.0.0.0/8",
        ])
        .env_remove("RUST_LOG")
        .env_remove("JOURNAL_STREAM")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(file);
    match journal_stream {
        JournalStream::ThisFile => {
            cmd.env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()));
        }
        JournalStream::Elsewhere => {
            cmd.env(
                "JOURNAL_STREAM",
                format!("{}:{}", meta.dev(), meta.ino() + 1),
            );
        }
        JournalStream::Unset => {}
    }
    let status = cmd.status().unwrap();
    assert!(!status.success());
    let text = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    text
}

#[derive(Debug, Clone, Copy)]
enum JournalStream {
    ThisFile,
    Elsewhere,
    Unset,
}

#[test]
fn stderr_that_is_the_journal_gets_priorities() {
    let out = failing_client(&[], JournalStream::ThisFile);
    assert!(out.starts_with("<3>ERROR "), "{out}");
    assert!(
        out.contains("reading the PSK from /nonexistent/psk"),
        "{out}"
    );
    for other in [JournalStream::Elsewhere, JournalStream::Unset] {
        let out = failing_client(&[], other);
        assert!(
            !out.starts_with('<') && out.contains(" ERROR "),
            "{other:?}: {out}"
        );
    }
    // Asked for explicitly, whatever stderr is.
    let out = failing_client(&["--log-format", "journal"], JournalStream::Unset);
    assert!(out.starts_with("<3>ERROR "), "{out}");
}

#[test]
fn json_is_one_object_per_line() {
    let out = failing_client(&["--log-format", "json"], JournalStream::ThisFile);
    let lines: Vec<&str> = out.lines().collect();
    assert!(!lines.is_empty());
    for l in lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"));
        assert_eq!(v["level"], "ERROR");
        assert!(v["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("/nonexistent/psk")));
    }
}
