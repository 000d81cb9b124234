//! How the long-running subcommands (`origin`, `edge`, `demo`) learn that
//! they should stop.

/// Resolves on SIGINT or SIGTERM (systemd and Kubernetes stop with it).
pub(crate) async fn signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
