//! `ipsec-server generate`: shell completions and man pages, generated from the CLI itself
//! (clap's `clap_complete` and `clap_mangen`), so that what a package ships can never
//! disagree with what the binary accepts. A module of the binary, like `loadgen`: it needs the
//! `Cli` definition of `main.rs`.
//!
//! Packaging (scripts/build-deb) runs the built binary:
//! `ipsec-server generate man --out DIR` writes `ipsec-server.8` and one page per subcommand
//! (`ipsec-server-run.8`, …), `ipsec-server generate completions bash|zsh|fish --out DIR`
//! writes `ipsec-server`, `_ipsec-server` or `ipsec-server.fish` (the names bash-completion,
//! zsh and fish look for). Without `--out` the main page or the script goes to stdout.
//!
//! Invariants: every subcommand that `--help` lists has a man page and is named in the main
//! page and in every completion script (the tests below enumerate the CLI, so a new
//! subcommand is covered without editing them). Generation renders into memory first: a
//! write error is an error, never a panic.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{CommandFactory, Subcommand};
use clap_complete::Shell;
use clap_mangen::roff::{bold, roman, Roff};
use clap_mangen::Man;
use ipsec_server::config;

/// The name the binary is installed under; completions and man pages are keyed by it.
const BIN: &str = "ipsec-server";

/// Section 8: system administration commands and daemons (the binary is in /usr/sbin).
const SECTION: &str = "8";

#[derive(Subcommand)]
pub enum What {
    /// A completion script for SHELL (bash, zsh, fish, elvish, powershell).
    Completions {
        shell: Shell,
        /// Write the script into DIR under the name the shell loads it by (stdout without it).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Man pages in section 8: ipsec-server(8) and one per subcommand.
    Man {
        /// Write every page into DIR (without it: only ipsec-server(8), to stdout).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

/// Runs `ipsec-server generate …`; prints the files written, one per line, with `--out`.
pub fn run(what: What) -> anyhow::Result<()> {
    let written = match what {
        What::Completions { shell, out } => {
            let script = completion(shell);
            match out {
                Some(dir) => vec![write_file(&dir, &completion_file_name(shell), &script)?],
                None => return stdout(&script),
            }
        }
        What::Man { out: Some(dir) } => man_pages(&dir)?,
        What::Man { out: None } => return stdout(&man_page(&cli())?),
    };
    for path in written {
        println!("{}", path.display());
    }
    Ok(())
}

/// The CLI as clap sees it after `build()`: subcommands carry their display names
/// (`ipsec-server-run`), the `help` subcommand is left out (it has no page of its own).
fn cli() -> clap::Command {
    let mut cmd = crate::Cli::command()
        .bin_name(BIN)
        .disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// The completion script for `shell`.
fn completion(shell: Shell) -> Vec<u8> {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut crate::Cli::command(), BIN, &mut buf);
    buf
}

/// Where each shell looks: bash-completion loads `completions/ipsec-server` when the command
/// is first completed; zsh's `vendor-completions/_ipsec-server`; fish's
/// `vendor_completions.d/ipsec-server.fish`.
fn completion_file_name(shell: Shell) -> String {
    match shell {
        Shell::Bash => BIN.to_owned(),
        other => clap_complete::Generator::file_name(&other, BIN),
    }
}

/// Writes ipsec-server.8 and a page for each visible subcommand, recursively, into `dir`.
fn man_pages(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    fn walk(cmd: &clap::Command, dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
        let name = cmd.get_display_name().unwrap_or_else(|| cmd.get_name());
        out.push(write_file(
            dir,
            &format!("{name}.{SECTION}"),
            &man_page(cmd)?,
        )?);
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            walk(sub, dir, out)?;
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(&cli(), dir, &mut out)?;
    Ok(out)
}

/// One page: clap's sections (NAME, SYNOPSIS, DESCRIPTION, OPTIONS, SUBCOMMANDS, VERSION),
/// then, on the main page, FILES, SIGNALS and SEE ALSO, which the CLI cannot express.
fn man_page(cmd: &clap::Command) -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    Man::new(cmd.clone()).section(SECTION).render(&mut buf)?;
    if cmd.get_name() == BIN {
        main_page_extra().to_writer(&mut buf)?;
    }
    Ok(buf)
}

fn main_page_extra() -> Roff {
    let files = [
        (
            config::DEFAULT_CONFIG.to_owned(),
            "The configuration (TOML; keys are the CreateIpsecServer parameters in snake_case), \
             read by run and check when --config is not given.",
        ),
        (
            "/var/lib/ipsec-server".to_owned(),
            "gateway.state_dir (default): the control API's state, with its PSKs, mode 0600 in a \
             0700 directory.",
        ),
        (
            config::DEFAULT_CONTROL_SOCKET.to_owned(),
            "gateway.control_socket (default): what status reads; mode 0600, root's.",
        ),
    ];
    let signals = [
        (
            "SIGHUP".to_owned(),
            "Reload the configuration file and apply its [ipsec_server] section; an invalid \
             file is logged and ignored. [gateway] and [limits] are read at start only. With \
             [api] the server is changed through the API and SIGHUP is ignored.",
        ),
        (
            "SIGINT, SIGTERM".to_owned(),
            "Stop: a DELETE to every client, then the routes, nftables rules and the TUN \
             device are removed.",
        ),
    ];
    let mut roff = Roff::default();
    for (heading, entries) in [("FILES", &files[..]), ("SIGNALS", &signals[..])] {
        roff.control("SH", [heading]);
        for (term, text) in entries {
            roff.control("TP", []);
            roff.text([bold(term.as_str())]);
            roff.text([roman(*text)]);
        }
    }
    roff.control("SH", ["SEE ALSO"]);
    roff.text([roman(
        "swanctl(8), nft(8), ip(8). The README and ARCHITECTURE.md of the source repository: \
         configuration keys, troubleshooting, the threads and the packet path.",
    )]);
    roff
}

fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(name);
    std::fs::write(&path, bytes)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

fn stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The subcommands `ipsec-server --help` lists (clap's own `help` aside).
    fn subcommands() -> Vec<String> {
        let names: Vec<String> = cli()
            .get_subcommands()
            .filter(|s| !s.is_hide_set())
            .map(|s| s.get_name().to_owned())
            .collect();
        assert!(names.len() >= 5, "too few subcommands: {names:?}");
        names
    }

    /// roff escapes `-` as `\-`; undo it to search the text.
    fn text(bytes: &[u8]) -> String {
        String::from_utf8(bytes.to_vec())
            .expect("UTF-8")
            .replace("\\-", "-")
    }

    #[test]
    fn the_main_man_page_names_every_subcommand_and_the_files() {
        let page = text(&man_page(&cli()).expect("rendered"));
        assert!(page.contains(".TH ipsec-server 8"), "{page}");
        for sub in subcommands() {
            assert!(
                page.contains(&format!("ipsec-server-{sub}(8)")),
                "ipsec-server(8) does not list {sub}"
            );
        }
        for needle in [
            config::DEFAULT_CONFIG,
            config::DEFAULT_CONTROL_SOCKET,
            "SIGHUP",
            "ARCHITECTURE.md",
        ] {
            assert!(page.contains(needle), "no {needle} in ipsec-server(8)");
        }
    }

    #[test]
    fn every_subcommand_gets_its_own_man_page() {
        let dir = std::env::temp_dir().join(format!("ipsec-server-man-{}", std::process::id()));
        let written = man_pages(&dir).expect("written");
        let expected = [
            "ipsec-server.8".to_owned(),
            "ipsec-server-generate-man.8".to_owned(),
        ]
        .into_iter()
        .chain(
            subcommands()
                .into_iter()
                .map(|s| format!("ipsec-server-{s}.8")),
        );
        for name in expected {
            assert!(
                written.contains(&dir.join(&name)),
                "no {name} in {written:?}"
            );
        }
        for page in &written {
            let body = text(&std::fs::read(page).expect("readable"));
            let stem = page.file_stem().unwrap().to_str().unwrap();
            assert!(
                body.contains(&format!(".TH {stem} 8")),
                "{}",
                page.display()
            );
        }
        std::fs::remove_dir_all(&dir).expect("cleaned up");
    }

    #[test]
    fn every_completion_script_names_every_subcommand() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let script = String::from_utf8(completion(shell)).expect("UTF-8");
            for sub in subcommands() {
                // bash: `case` arms `ipsec__server,run)`; zsh: `'run:…'`; fish: `-a "run"`.
                let named = match shell {
                    Shell::Bash => format!("ipsec__server,{sub})"),
                    Shell::Zsh => format!("'{sub}:"),
                    _ => format!("-a \"{sub}\""),
                };
                assert!(script.contains(&named), "{shell}: no {named}");
            }
        }
    }

    #[test]
    fn completion_files_are_named_as_each_shell_loads_them() {
        assert_eq!(completion_file_name(Shell::Bash), "ipsec-server");
        assert_eq!(completion_file_name(Shell::Zsh), "_ipsec-server");
        assert_eq!(completion_file_name(Shell::Fish), "ipsec-server.fish");
    }
}
