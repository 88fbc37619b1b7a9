//! Directories only the daemon may enter: the state directory (it holds PSKs and AccessKey
//! answers) and the directory of the control socket.
//!
//! Invariants: [`private_dir`] never follows a symbolic link at the directory itself (it is
//! refused), never accepts a directory owned by another user or writable by group or others
//! (they could swap what is inside), creates a missing one with mode 0700, and never changes
//! the mode of an existing one: a directory readable by others is reported
//! ([`PrivateDir::Readable`]) for the caller to warn about, not tightened, because a
//! misconfigured path (`/run`, `/var/lib`) would otherwise take the host's shared directory
//! away from everyone else. What the daemon puts inside is owner-only itself (0600).
#![allow(unsafe_code)]

use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::Path;

use super::context;

/// What [`private_dir`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrivateDir {
    /// It did not exist and was created with mode 0700.
    Created,
    /// It existed with mode 0700 (or stricter).
    AlreadyPrivate,
    /// It existed, not writable by others, but readable or searchable by them (its mode).
    Readable(u32),
}

/// The effective user id of this process.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid(2) takes no arguments and cannot fail.
    unsafe { libc::geteuid() }
}

/// Makes `dir` a directory of ours with mode 0700 (see the module docs). Missing parents
/// are created with mode 0700 too.
pub fn private_dir(dir: &Path) -> io::Result<PrivateDir> {
    let what = |e| context(format_args!("{}", dir.display()), e);
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(what)?;
            // mkdir(2) applies the umask, which can only remove bits; check what we got.
            check(dir)?;
            Ok(PrivateDir::Created)
        }
        Err(e) => Err(what(e)),
        Ok(_) => check(dir),
    }
}

/// What [`private_dir`] would say about `dir` without creating it: `None` when it does not
/// exist (it would be created), else the same answer or refusal. For `ipsec-server check`.
pub fn inspect_private_dir(dir: &Path) -> io::Result<Option<PrivateDir>> {
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(context(format_args!("{}", dir.display()), e)),
        Ok(_) => check(dir).map(Some),
    }
}

fn check(dir: &Path) -> io::Result<PrivateDir> {
    let meta = std::fs::symlink_metadata(dir)
        .map_err(|e| context(format_args!("{}", dir.display()), e))?;
    if meta.file_type().is_symlink() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is a symbolic link; give the real directory",
                dir.display()
            ),
        ));
    }
    if !meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a directory", dir.display()),
        ));
    }
    let me = effective_uid();
    if meta.uid() != me {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} is owned by uid {}, not by this process (uid {me})",
                dir.display(),
                meta.uid()
            ),
        ));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} has mode {mode:o}: group or others may write to it; use a directory of \
                 mode 0700",
                dir.display()
            ),
        ));
    }
    if mode & 0o077 == 0 {
        return Ok(PrivateDir::AlreadyPrivate);
    }
    Ok(PrivateDir::Readable(mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_private_and_refuses_links_files_and_writable_dirs() {
        use std::os::unix::fs::PermissionsExt;
        let base = std::env::temp_dir().join(format!("io-fs-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let dir = base.join("a/b");
        assert_eq!(private_dir(&dir).unwrap(), PrivateDir::Created);
        let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(
            mode(&base.join("a")),
            0o700,
            "missing parents are private too"
        );
        assert_eq!(private_dir(&dir).unwrap(), PrivateDir::AlreadyPrivate);

        // Readable by others: reported, left as it is.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(private_dir(&dir).unwrap(), PrivateDir::Readable(0o755));
        assert_eq!(mode(&dir), 0o755);
        // Writable by group or others (also /tmp's 1777): refused.
        for m in [0o775, 0o757, 0o1777] {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(m)).unwrap();
            let e = private_dir(&dir).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{m:o}: {e}");
        }

        let link = base.join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        let e = private_dir(&link).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");

        let file = base.join("file");
        std::fs::write(&file, b"").unwrap();
        let e = private_dir(&file).unwrap_err();
        assert!(e.to_string().contains("not a directory"), "{e}");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
