//! What a long-running polis process sets up with the system: its stop
//! signals and its open-file limit.

/// Returns once the process gets SIGTERM or SIGINT.
pub(crate) async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut terminate), Ok(mut interrupt)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the node runs until killed.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
}

/// Raises the open-file limit so `maxclients` connections fit, as Redis
/// does at start; warns when the hard limit is too low.
pub(crate) fn raise_file_limit(maxclients: usize) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    // Listeners, peer channels, the log engine's files.
    const RESERVED_FILES: u64 = 128;
    let wanted = maxclients as u64 + RESERVED_FILES;
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    if soft >= wanted {
        return;
    }
    let target = wanted.min(hard);
    if setrlimit(Resource::RLIMIT_NOFILE, target, hard).is_err() || target < wanted {
        tracing::warn!(
            soft,
            hard,
            wanted,
            "open-file limit is below maxclients + {RESERVED_FILES}; raise it (ulimit -n)"
        );
    }
}
