//! `chat-devserver` binary: parse flags, bind, print exactly one `listening on http://HOST:PORT`
//! line to stdout (flushed), then serve until Ctrl-C / SIGTERM (which stop it at once).

use std::io::Write;

use clap::Parser;

use chat_devserver::config::{Args, Config};

#[tokio::main]
async fn main() {
    let config = Config::from_args(Args::parse(), |k| std::env::var(k).ok());
    let (listener, app) = match chat_devserver::bind(config).await {
        Ok(bound) => bound,
        Err(err) => {
            eprintln!("chat-devserver: cannot listen: {err}");
            std::process::exit(1);
        }
    };
    let addr = match listener.local_addr() {
        Ok(addr) => addr,
        Err(err) => {
            eprintln!("chat-devserver: {err}");
            std::process::exit(1);
        }
    };
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on http://{addr}");
        let _ = out.flush();
    }
    if let Some(remote) = &app.config.remote {
        eprintln!(
            "chat-devserver: /api/chat/* fronts real Trigger.dev at {}",
            remote.api_url
        );
    }
    // Open `.out` long-polls would hold a graceful shutdown for up to 10 minutes; a dev server
    // just stops.
    tokio::select! {
        served = chat_devserver::serve(listener, app, std::future::pending()) => {
            if let Err(err) = served {
                eprintln!("chat-devserver: {err}");
                std::process::exit(1);
            }
        }
        _ = shutdown_signal() => {}
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
