//! SIGINT, SIGTERM and SIGHUP for the main thread, which does nothing but wait for them: a
//! stop signal shuts the daemon (or the client) down, SIGHUP reloads the config file.

use std::time::Duration;

use tracing::warn;

use super::DaemonError;

/// What a signal asks of the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// SIGINT, SIGTERM.
    Stop,
    /// SIGHUP: read the config file again.
    Reload,
}

/// Blocks until SIGINT, SIGTERM or SIGHUP. Handlers are installed once, before the first
/// wait, so a signal between two waits is not lost.
pub(crate) struct Signals {
    rt: tokio::runtime::Runtime,
    streams: Option<[tokio::signal::unix::Signal; 3]>,
}

impl Signals {
    pub(crate) fn new() -> Result<Self, DaemonError> {
        use tokio::signal::unix::{signal, SignalKind};
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(DaemonError::Signals)?;
        let streams = rt.block_on(async {
            Ok::<_, std::io::Error>([
                signal(SignalKind::terminate())?,
                signal(SignalKind::interrupt())?,
                signal(SignalKind::hangup())?,
            ])
        });
        let streams = match streams {
            Ok(s) => Some(s),
            Err(e) => {
                warn!("cannot install signal handlers ({e}); running until killed");
                None
            }
        };
        Ok(Self { rt, streams })
    }

    pub(crate) fn wait(&mut self) -> Signal {
        loop {
            if let Some(s) = self.wait_timeout(Duration::from_secs(3600)) {
                return s;
            }
        }
    }

    /// The next signal, or `None` after `timeout` without one.
    pub(crate) fn wait_timeout(&mut self, timeout: Duration) -> Option<Signal> {
        let Some([term, int, hup]) = &mut self.streams else {
            std::thread::sleep(timeout);
            return None;
        };
        self.rt.block_on(async {
            tokio::select! {
                _ = term.recv() => Some(Signal::Stop),
                _ = int.recv() => Some(Signal::Stop),
                _ = hup.recv() => Some(Signal::Reload),
                _ = tokio::time::sleep(timeout) => None,
            }
        })
    }
}
