//! `chat-devserver`: an in-memory stand-in for Trigger.dev's Sessions API (as documented in
//! `docs/ai-chat/client-protocol.mdx` of `@trigger.dev/sdk@4.8.3`), a scripted chat agent, the two
//! customer endpoints a real app has (start a session, mint a token), fault injection for tests,
//! and the demo's static files. One process, no disk.
//!
//! The binary (`src/main.rs`) only parses flags; tests start the same server in-process:
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let server = chat_devserver::start(chat_devserver::Config { port: 0, ..Default::default() }).await?;
//! println!("listening on {}", server.url());
//! # Ok(()) }
//! ```

pub mod admin;
pub mod agent;
pub mod app;
pub mod auth;
pub mod clock;
pub mod config;
pub mod cors;
pub mod customer;
pub mod error;
pub mod faults;
pub mod head_start;
pub mod ids;
pub mod in_route;
pub mod jwt;
pub mod out_route;
pub mod outlog;
pub mod records;
pub mod remote;
pub mod reqlog;
pub mod session;
pub mod sessions_api;
pub mod sse;
pub mod static_files;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;

pub use config::Config;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A server started by [`start`]. Dropping it shuts the server down.
pub struct RunningServer {
    addr: SocketAddr,
    app: Arc<app::App>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl RunningServer {
    /// The bound address (the real port when the config asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://IP:PORT`, what the binary prints after `listening on `.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The shared state, for tests that want to look inside.
    pub fn app(&self) -> &Arc<app::App> {
        &self.app
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.app.store.reset();
    }
}

/// Binds the listener (port 0 picks a free port) and builds the application.
pub async fn bind(config: Config) -> std::io::Result<(TcpListener, Arc<app::App>)> {
    let listener = TcpListener::bind((config.host.as_str(), config.port)).await?;
    let addr = listener.local_addr()?;
    let app = app::App::new(config, addr)?;
    Ok((listener, app))
}

/// Serves `app` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    app: Arc<app::App>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let router = app::router(app);
    // SSE writes are small and latency-bound: without TCP_NODELAY, Nagle holds a record back
    // until the previous one is acknowledged (tens of milliseconds on loopback).
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Binds and serves in a background task; for tests and embedding.
pub async fn start(config: Config) -> std::io::Result<RunningServer> {
    let (listener, app) = bind(config).await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = oneshot::channel::<()>();
    let serving = app.clone();
    tokio::spawn(async move {
        let _ = serve(listener, serving, async {
            let _ = rx.await;
        })
        .await;
    });
    Ok(RunningServer {
        addr,
        app,
        shutdown: Some(tx),
    })
}
