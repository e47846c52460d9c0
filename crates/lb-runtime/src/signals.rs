//! Signals become supervisor events: SIGINT and SIGTERM stop, SIGHUP reloads the config file,
//! SIGUSR2 starts a zero-downtime upgrade (as `lb upgrade`).

use crate::error::RunError;
use crate::event::Event;
use crate::service_thread::spawn_runtime_thread;
use crossbeam_channel::Sender;
use std::time::Duration;

/// Installs the handlers on a thread of their own. Returns once they are installed, so a signal
/// sent right after the ready line is never lost.
pub(crate) fn install(events: Sender<Event>) -> Result<(), RunError> {
    use tokio::signal::unix::{signal, SignalKind};
    let (installed_tx, installed) = crossbeam_channel::bounded::<Result<(), String>>(1);
    spawn_runtime_thread("signals", move || async move {
        let (mut term, mut int, mut hup, mut usr2) = match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
            signal(SignalKind::user_defined2()),
        ) {
            (Ok(t), Ok(i), Ok(h), Ok(u)) => (t, i, h, u),
            (Err(e), _, _, _) | (_, Err(e), _, _) | (_, _, Err(e), _) | (_, _, _, Err(e)) => {
                let _ = installed_tx.send(Err(e.to_string()));
                return;
            }
        };
        let _ = installed_tx.send(Ok(()));
        loop {
            let event = tokio::select! {
                _ = term.recv() => Event::Signal("SIGTERM"),
                _ = int.recv() => Event::Signal("SIGINT"),
                _ = hup.recv() => Event::Reload,
                _ = usr2.recv() => Event::UpgradeSignal,
            };
            if events.send(event).is_err() {
                return;
            }
        }
    })
    .map_err(|e| RunError::Runtime(format!("cannot start the signal thread: {e}")))?;
    match installed.recv_timeout(Duration::from_secs(10)) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(RunError::Runtime(format!(
            "cannot install signal handlers: {e}"
        ))),
        Err(_) => Err(RunError::Runtime(
            "signal handlers not installed in time".to_string(),
        )),
    }
}
