//! The stop signal every long-running shadowdiff process obeys: SIGTERM or SIGINT (Ctrl-C).

use std::future::Future;

/// A future that completes on the first SIGTERM or SIGINT. The handlers are installed when this
/// is called, not when the future is first polled, so a signal sent right after (for example by
/// a test that has just read the listening address) is not lost.
#[cfg(unix)]
pub fn stop_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

#[cfg(not(unix))]
pub fn stop_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
