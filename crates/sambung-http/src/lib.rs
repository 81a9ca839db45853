//! Serving a router over HTTP/1.1 with the limits a server on a network needs that
//! `axum::serve` does not set, so that no client can hold the server's memory or connections:
//! - a client must send its request head within [`HEADER_READ_TIMEOUT`], and a head larger
//!   than [`MAX_HEAD_BYTES`] is answered 431;
//! - a client that stops reading its answer for [`WRITE_STALL_TIMEOUT`] is disconnected
//!   (whatever was waiting for it is dropped, not buffered);
//! - at most [`Limits::max_connections`] connections are open at once; one more is answered
//!   503 and closed;
//! - shutdown waits for requests in flight, for a while.
//!
//! Also the rest of the edge both servers share ([`edge`]): cookies, constant-time secrets,
//! origins, security headers, database errors as statuses.

pub mod edge;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

/// How long a client may take to send a request's line and headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head (line and headers) accepted; a larger one is answered 431.
pub const MAX_HEAD_BYTES: usize = 32 * 1024;
/// How long an answer may wait for its client to read it.
pub const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long requests in flight get to finish once shutdown begins.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(4);

/// What one server accepts at once.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Open connections; each holds buffers and a task even when idle.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
        }
    }
}

/// The answer to a connection over [`Limits::max_connections`], written without parsing its
/// request.
const TOO_MANY_CONNECTIONS: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 93\r\n\r\n\
{\"code\":\"TOO_MANY_CONNECTIONS\",\"message\":\"The server is at its connection limit; try again.\"}";

/// Serve `router` on `listener` within `limits` until `shutdown` completes, then let requests
/// in flight finish (at most [`DRAIN_TIMEOUT`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_header_size(MAX_HEAD_BYTES)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    let open = Arc::new(Semaphore::new(limits.max_connections));
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors, say: wait a little rather than spin or stop serving.
                Err(e) => {
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let (mut stream, peer) = stream;
        let Ok(permit) = open.clone().try_acquire_owned() else {
            tracing::warn!(
                limit = limits.max_connections,
                "refused a connection over the limit"
            );
            tokio::spawn(async move {
                let refuse = async {
                    stream.write_all(TOO_MANY_CONNECTIONS).await?;
                    stream.shutdown().await
                };
                let _ = tokio::time::timeout(Duration::from_secs(1), refuse).await;
            });
            continue;
        };
        let _ = stream.set_nodelay(true);
        let mut stream = tokio_io_timeout::TimeoutStream::new(stream);
        stream.set_write_timeout(Some(WRITE_STALL_TIMEOUT));
        // Handlers may ask for the client's address (`ConnectInfo<SocketAddr>`).
        let service = TowerToHyperService::new(
            router
                .clone()
                .layer(axum::Extension(ConnectInfo::<SocketAddr>(peer))),
        );
        let connection =
            graceful.watch(http.serve_connection(TokioIo::new(Box::pin(stream)), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still running at shutdown were cut off");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::TOO_MANY_CONNECTIONS;

    #[test]
    fn the_refusal_is_a_whole_http_answer() {
        let text = std::str::from_utf8(TOO_MANY_CONNECTIONS).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(length, body.len());
    }
}
