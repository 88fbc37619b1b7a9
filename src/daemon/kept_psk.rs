//! The generated PSK, kept. With neither `psk` nor `psk_file`, validation generates a random
//! PSK on every load (the configuration layer does no I/O of its own beyond reading its
//! files), which alone would give clients a new PSK on every SIGHUP and restart. The daemon
//! keeps the first one in `state_dir/generated-psk` and serves that one instead, so a
//! generated PSK is the same across reloads and restarts; `ipsec-server show-psk` prints it.
//!
//! Invariants: the file is created with mode 0600 (exclusively: a file that appears at the
//! same moment is read, never overwritten) in a `state_dir` checked by
//! [`crate::api::state::private_state_dir`] (0700 if created; a link or a directory others
//! may write to is refused); it is never followed through a symbolic link, never read past
//! [`MAX_LEN`] bytes, and refused when group or others may read it or it does not hold a valid
//! PSK. The PSK is never written into the config file and never logged.

use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::secret::SecretBytes;

use super::DaemonError;

/// The file in `state_dir`.
pub const FILE_NAME: &str = "generated-psk";

/// The most a kept PSK file may hold: a PSK of at most 100 bytes and a line end.
const MAX_LEN: u64 = 102;

/// Where the generated PSK of a gateway with this `state_dir` is kept.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE_NAME)
}

/// `config` with its generated PSK (if it has one) replaced by the kept one; the first time,
/// the generated one is kept. A configured PSK (`psk`, `psk_file`) is left alone and the kept
/// file is not touched.
pub fn keep_generated_psk(config: Config) -> Result<Config, DaemonError> {
    let Some(server) = config.ipsec_server().filter(|s| s.psk_generated()) else {
        return Ok(config);
    };
    let state_dir = config.gateway().state_dir();
    let file = path(state_dir);
    let err = |source| DaemonError::KeptPsk {
        path: file.clone(),
        source,
    };
    crate::api::state::private_state_dir(state_dir).map_err(err)?;
    let psk = match read(&file).map_err(err)? {
        Some(psk) => {
            tracing::debug!(file = %file.display(), "psk: the generated one kept earlier");
            psk
        }
        None => match create(&file, server.psk()) {
            Ok(()) => {
                tracing::info!(
                    file = %file.display(),
                    "no psk in the configuration: generated one and kept it (mode 0600); \
                     `ipsec-server show-psk` prints it"
                );
                server.psk().clone()
            }
            // Created by someone else in the meantime: theirs is the one.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => read(&file)
                .map_err(err)?
                .ok_or_else(|| err(io::ErrorKind::NotFound.into()))?,
            Err(e) => return Err(err(e)),
        },
    };
    let server = server.with_kept_psk(psk).ok_or_else(|| {
        err(io::Error::new(
            io::ErrorKind::InvalidData,
            "does not hold a valid PSK (1..=100 printable ASCII characters); remove it to \
             have a new one generated",
        ))
    })?;
    Ok(config.with_ipsec_server(Some(server)))
}

/// The kept PSK in `file`, `None` when there is none yet (see the module docs for what is
/// refused).
pub fn read(file: &Path) -> io::Result<Option<SecretBytes>> {
    let f = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(file)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "is not a regular file",
        ));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "has mode {:o}: group or others may read it; chmod 600 it",
                meta.mode() & 0o7777
            ),
        ));
    }
    let mut bytes = Vec::new();
    f.take(MAX_LEN + 1).read_to_end(&mut bytes)?;
    let bytes = SecretBytes::new(bytes);
    if bytes.len() as u64 > MAX_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("is longer than {MAX_LEN} bytes"),
        ));
    }
    let text = bytes.expose();
    let end = text.strip_suffix(b"\n").unwrap_or(text);
    Ok(Some(SecretBytes::from_slice(end)))
}

/// Writes `psk` to a new `file` (mode 0600), durably.
fn create(file: &Path, psk: &SecretBytes) -> io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(file)?;
    let mut line = psk.expose().to_vec();
    line.push(b'\n');
    let line = SecretBytes::new(line);
    f.write_all(line.expose())?;
    f.sync_all()?;
    if let Some(dir) = file.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn config(state_dir: &Path, psk_line: &str) -> Config {
        let text = format!(
            r#"
[gateway]
vpn_gateway_id = "vpn-test0001"
region_id = "local"
state_dir = "{}"

[ipsec_server]
local_subnet = ["192.168.0.0/24"]
client_ip_pool = "10.0.0.0/24"
{psk_line}
"#,
            state_dir.display()
        );
        Config::from_toml_str(&text, &[], &mut rand::thread_rng()).expect("valid config")
    }

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("kept-psk-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn a_generated_psk_is_kept_0600_and_reused_by_every_later_load() {
        let dir = temp_dir("reuse");
        let first = config(&dir, "");
        let generated = first.ipsec_server().unwrap().psk().clone();
        let kept = keep_generated_psk(first).expect("kept");
        let psk = kept.ipsec_server().unwrap().psk().clone();
        assert!(psk.ct_eq(generated.expose()), "the first one is kept");
        let file = path(&dir);
        let meta = std::fs::metadata(&file).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::metadata(&dir).unwrap().mode() & 0o777,
            0o700,
            "state_dir created private"
        );
        // A reload or a restart: validation generates another; the kept one wins.
        for _ in 0..3 {
            let again = config(&dir, "");
            assert!(!again.ipsec_server().unwrap().psk().ct_eq(psk.expose()));
            let again = keep_generated_psk(again).expect("kept");
            assert!(again.ipsec_server().unwrap().psk().ct_eq(psk.expose()));
        }
        assert!(read(&file).unwrap().unwrap().ct_eq(psk.expose()));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_configured_psk_is_left_alone() {
        let dir = temp_dir("configured");
        let cfg = keep_generated_psk(config(&dir, r#"psk = "Own-Psk-Value""#)).unwrap();
        assert!(cfg.ipsec_server().unwrap().psk().ct_eq(b"Own-Psk-Value"));
        assert!(!dir.exists(), "nothing written for a configured PSK");
    }

    #[test]
    fn loose_modes_links_and_invalid_contents_are_refused() {
        let dir = temp_dir("refused");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let file = path(&dir);
        let refused = |what: &str| {
            let e = keep_generated_psk(config(&dir, "")).expect_err(what);
            let text = e.to_string();
            assert!(text.contains(FILE_NAME), "{what}: {text}");
            text
        };
        std::fs::write(&file, b"Kept-Psk-1234567\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(refused("readable by others").contains("644"));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let cfg = keep_generated_psk(config(&dir, "")).unwrap();
        assert!(cfg.ipsec_server().unwrap().psk().ct_eq(b"Kept-Psk-1234567"));

        std::fs::write(&file, b"Zq7\tXw9\n").unwrap();
        let text = refused("not printable");
        assert!(!text.contains("Zq7"), "never the contents: {text}");
        std::fs::write(&file, vec![b'a'; 200]).unwrap();
        refused("too long");
        std::fs::remove_file(&file).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", &file).unwrap();
        refused("a symbolic link");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
