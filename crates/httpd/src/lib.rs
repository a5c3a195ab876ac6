//! galley's HTTP serving layer: serves an axum `Router` on a TCP listener, in plain text or
//! behind any handshake (the controller's TLS), with the bounds `axum::serve` lacks:
//!
//! - a first-request header timeout that starts at accept and covers the handshake, and
//!   an idle timeout for kept-alive connections (hyper's header timer);
//! - a per-request timeout (503) and a body limit (413, before reading a declared
//!   length; axum's extractors answer 413 for a chunked body that goes over);
//! - a total and a per-source connection cap; over a cap, the connection idle longest
//!   gives way, or the new one is closed at once when none is idle ([`registry`]), so
//!   idle or slow clients cannot keep anyone out and nothing waits in a queue.
//!
//! Every request carries `ConnectInfo<C>` (a `SocketAddr`, or the caller's own type
//! through [`Server::serve_with`]), as `into_make_service_with_connect_info` did.
//! [`Limits`] has each server's defaults and the reasons for them.

mod limits;
pub mod registry;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit};
use axum::http::{header, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt as _;

pub use limits::Limits;
use registry::Registry;
pub use registry::{Source, Stats};

/// What turns an accepted TCP stream into the stream HTTP is spoken on: nothing
/// ([`Plain`]) or a TLS handshake. It runs inside the connection's own task, under the
/// first-request header timeout and after the connection caps admitted it.
pub trait Handshake: Clone + Send + Sync + 'static {
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    fn handshake(
        &self,
        stream: TcpStream,
        remote: SocketAddr,
    ) -> impl Future<Output = std::io::Result<Self::Io>> + Send;
}

/// Plain HTTP: the TCP stream as it is.
#[derive(Debug, Clone, Copy, Default)]
pub struct Plain;

impl Handshake for Plain {
    type Io = TcpStream;

    async fn handshake(&self, stream: TcpStream, _: SocketAddr) -> std::io::Result<TcpStream> {
        Ok(stream)
    }
}

/// One HTTP server: a name for its log lines, its limits and its connection registry.
#[derive(Debug)]
pub struct Server {
    name: &'static str,
    limits: Limits,
    registry: Arc<Registry>,
}

/// The body limit, in bytes, on every request: for an extractor's 413 message (a body
/// without a declared length is only found too large while it is read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimit(pub usize);

/// Reads a server's [`Stats`] while it runs (tests, logs).
#[derive(Debug, Clone)]
pub struct StatsHandle(Arc<Registry>);

impl StatsHandle {
    pub fn now(&self) -> Stats {
        self.0.stats()
    }
}

/// Descriptors a process needs besides its HTTP connections (its store, logs, SQL and
/// HTTP clients): below `max_connections` plus this, accept fails with EMFILE first.
const OTHER_DESCRIPTORS: u64 = 64;

impl Server {
    /// `name` says which server a log line is about ("agent API", "controller API").
    pub fn new(name: &'static str, limits: Limits) -> Server {
        let registry = Arc::new(Registry::new(
            name,
            limits.max_connections,
            limits.max_connections_per_source,
        ));
        Server {
            name,
            limits,
            registry,
        }
    }

    pub fn stats(&self) -> StatsHandle {
        StatsHandle(Arc::clone(&self.registry))
    }

    /// Serves `router` in plain HTTP until `shutdown` resolves, then lets requests in
    /// flight finish (each bounded by the request timeout) and returns. Requests carry
    /// `ConnectInfo<SocketAddr>`.
    pub async fn serve(
        self,
        listener: TcpListener,
        router: Router,
        shutdown: impl Future<Output = ()> + Send,
    ) -> std::io::Result<()> {
        self.serve_with::<Plain, SocketAddr>(listener, Plain, router, shutdown)
            .await
    }

    /// Like [`Server::serve`], with `handshake` run on each admitted connection and
    /// `ConnectInfo<C>` on each request.
    pub async fn serve_with<H, C>(
        self,
        listener: TcpListener,
        handshake: H,
        router: Router,
        shutdown: impl Future<Output = ()> + Send,
    ) -> std::io::Result<()>
    where
        H: Handshake,
        C: From<SocketAddr> + Clone + Send + Sync + 'static,
    {
        self.warn_if_descriptors_run_out_first();
        // tokio listens with a backlog of 1,024: a burst of connections faster than this
        // loop accepts fills it, and the kernel then drops new SYNs (an operator's among
        // them), which clients resend only after a second. listen(2) on a listening
        // socket only changes its backlog; the kernel caps it at net.core.somaxconn.
        if let Err(error) = nix::sys::socket::listen(&listener, nix::sys::socket::Backlog::MAXCONN)
        {
            tracing::debug!(
                server = self.name,
                "cannot raise the listen backlog: {error}"
            );
        }
        let limits = Arc::new(self.limits);
        let router = router.layer(DefaultBodyLimit::max(limits.max_body_bytes));
        let (stop, stopping) = watch::channel(false);
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = &mut shutdown => break,
            };
            let (stream, remote) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors, say: wait instead of spinning. The kernel
                    // keeps the connections in the backlog meanwhile.
                    tracing::warn!(server = self.name, "accepting a connection failed: {error}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            // Over a cap with every connection busy: closed at once (the registry
            // counted and logged it).
            let Some(admitted) = self.registry.admit(remote.ip()) else {
                continue;
            };
            tokio::spawn(connection::<H, C>(
                Connection {
                    stream,
                    remote,
                    admitted,
                    limits: Arc::clone(&limits),
                    registry: Arc::clone(&self.registry),
                    stopping: stopping.clone(),
                },
                handshake.clone(),
                router.clone(),
            ));
        }
        // The port is released at once; then every connection is asked to finish.
        drop(listener);
        drop(stopping);
        let _ = stop.send(true);
        stop.closed().await;
        Ok(())
    }

    fn warn_if_descriptors_run_out_first(&self) {
        use nix::sys::resource::{getrlimit, Resource};
        let Ok((soft, _)) = getrlimit(Resource::RLIMIT_NOFILE) else {
            return;
        };
        let wanted = self.limits.max_connections as u64 + OTHER_DESCRIPTORS;
        if soft < wanted {
            tracing::warn!(
                server = self.name,
                "the open-files limit ({soft}) is below the {} connections this server may hold plus {OTHER_DESCRIPTORS} for the rest of the process: beyond it, new connections wait in the listen backlog; raise LimitNOFILE (ulimit -n) to at least {wanted}",
                self.limits.max_connections
            );
        }
    }
}

/// What a connection's task owns.
struct Connection {
    stream: TcpStream,
    remote: SocketAddr,
    admitted: registry::Admitted,
    limits: Arc<Limits>,
    registry: Arc<Registry>,
    stopping: watch::Receiver<bool>,
}

async fn connection<H, C>(connection: Connection, handshake: H, router: Router)
where
    H: Handshake,
    C: From<SocketAddr> + Clone + Send + Sync + 'static,
{
    let Connection {
        stream,
        remote,
        admitted,
        limits,
        registry,
        mut stopping,
    } = connection;
    let admitted = Arc::new(admitted);
    let first_head = tokio::time::sleep(limits.header_read_timeout);
    tokio::pin!(first_head);
    let io = tokio::select! {
        io = handshake.handshake(stream, remote) => match io {
            Ok(io) => io,
            Err(error) => {
                tracing::debug!(%remote, "handshake failed: {error}");
                return;
            }
        },
        () = &mut first_head => {
            registry.count_header_timeout();
            return;
        }
        () = admitted.evicted() => return,
        _ = stopping.wait_for(|stop| *stop) => return,
    };
    let started = Arc::new(AtomicBool::new(false));
    let service = {
        let started = Arc::clone(&started);
        let admitted = Arc::clone(&admitted);
        let limits = Arc::clone(&limits);
        hyper::service::service_fn(move |request: Request<Incoming>| {
            started.store(true, Ordering::Relaxed);
            let busy = admitted.busy();
            let router = router.clone();
            let limits = Arc::clone(&limits);
            async move {
                let response = respond::<C>(router, request, remote, &limits).await;
                drop(busy);
                Ok::<_, Infallible>(response)
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.idle_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .keep_alive(true);
    let served = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(served);
    let mut waiting_for_first_head = true;
    let mut shutting_down = false;
    loop {
        tokio::select! {
            result = served.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%remote, "HTTP connection ended: {error}");
                }
                return;
            }
            () = &mut first_head, if waiting_for_first_head => {
                if !started.load(Ordering::Relaxed) {
                    registry.count_header_timeout();
                    return;
                }
                waiting_for_first_head = false;
            }
            () = admitted.evicted() => return,
            _ = stopping.wait_for(|stop| *stop), if !shutting_down => {
                // Idle connections close now, a request in flight finishes first.
                served.as_mut().graceful_shutdown();
                shutting_down = true;
            }
        }
    }
}

async fn respond<C>(
    router: Router,
    request: Request<Incoming>,
    remote: SocketAddr,
    limits: &Limits,
) -> Response
where
    C: From<SocketAddr> + Clone + Send + Sync + 'static,
{
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if let Some(length) = declared.filter(|length| *length > limits.max_body_bytes as u64) {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the request body is {length} bytes; this server accepts at most {} bytes",
                limits.max_body_bytes
            ),
        );
    }
    let mut request =
        request.map(|body| Body::new(http_body_util::Limited::new(body, limits.max_body_bytes)));
    request
        .extensions_mut()
        .insert(ConnectInfo(C::from(remote)));
    request
        .extensions_mut()
        .insert(BodyLimit(limits.max_body_bytes));
    match tokio::time::timeout(limits.request_timeout, router.oneshot(request)).await {
        Ok(Ok(response)) => response,
        Ok(Err(never)) => match never {},
        Err(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the request did not finish within this server's request timeout of {} s",
                limits.request_timeout.as_secs()
            ),
        ),
    }
}

/// The `{"error": ...}` body every galley API answers with.
fn error(status: StatusCode, message: String) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

#[cfg(test)]
mod tests;
