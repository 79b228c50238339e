//! The HTTP side of `serve`: four read-only endpoints routed by axum, connections served by
//! hyper with limits of their own. Nothing here waits on a collection or blocks one: a
//! request clones the `Arc` of the latest fleet and answers from bytes computed beforehand, so
//! a slow client holds only its copy of an old answer, never a lock.
//!
//! Limits: at most `MAX_CONNECTIONS` connections (more wait in the listen backlog), each
//! request's headers within `HEADER_TIMEOUT` and 16 KiB, each connection closed after
//! `CONNECTION_TIME_LIMIT` whatever it is doing; bodies are never read; only GET and HEAD.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::Shared;

pub const MAX_CONNECTIONS: usize = 256;
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Long enough for a 100,000-instance snapshot over a slow link, short enough that a client
/// which stops reading lets go of the bytes it holds.
pub const CONNECTION_TIME_LIMIT: Duration = Duration::from_secs(300);
/// How long connections in flight get to finish once serve is asked to stop.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// The read buffer: a request's line and headers must fit (hyper's smallest is 8 KiB).
const MAX_HEADER_BYTES: usize = 16 * 1024;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/metrics", get(metrics))
        .route("/snapshot", get(snapshot))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .with_state(shared)
}

/// Accepts connections until `stop` turns true, then lets those in flight finish for
/// `SHUTDOWN_GRACE` and closes the rest.
pub async fn serve(listener: TcpListener, router: Router, mut stop: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let (closing_tx, closing) = watch::channel(false);
    let mut connections = JoinSet::new();
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = super::stopped(&mut stop) => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors, say: wait a little rather than spin.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = super::stopped(&mut stop) => break,
        };
        let service = TowerToHyperService::new(router.clone());
        let mut closing = closing.clone();
        connections.spawn(async move {
            let _permit = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEADER_BYTES);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => return,
                _ = tokio::time::sleep(CONNECTION_TIME_LIMIT) => return,
                _ = super::stopped(&mut closing) => {}
            }
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, connection).await;
        });
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = closing_tx.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.abort_all();
    }
}

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

fn unauthorized() -> Response {
    let mut response = text(
        StatusCode::UNAUTHORIZED,
        "a bearer token is required: Authorization: Bearer <token>\n".to_owned(),
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"fleetscope\""),
    );
    response
}

/// Whether the request carries the token, compared in constant time.
fn authorized(headers: &HeaderMap, token: &str) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, credentials) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| credentials.trim())
        })
    else {
        return false;
    };
    given.as_bytes().ct_eq(token.as_bytes()).into()
}

async fn index(State(shared): State<Arc<Shared>>) -> Response {
    let response = text(
        StatusCode::OK,
        "fleetscope serve: /metrics (Prometheus), /snapshot (the latest snapshot, JSON), /healthz\n"
            .to_owned(),
    );
    shared.live.answered("other", response.status().as_u16());
    response
}

async fn not_found(State(shared): State<Arc<Shared>>) -> Response {
    let response = text(
        StatusCode::NOT_FOUND,
        "not found: /metrics, /snapshot and /healthz are served\n".to_owned(),
    );
    shared.live.answered("other", response.status().as_u16());
    response
}

async fn metrics(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let response = match &shared.token {
        Some(token) if shared.token_metrics && !authorized(&headers, token) => unauthorized(),
        _ => {
            let latest = shared.latest();
            match shared.live.encode(latest.as_deref().map(|p| &p.metrics)) {
                Ok(body) => (
                    [(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static(super::metrics::CONTENT_TYPE),
                    )],
                    body,
                )
                    .into_response(),
                Err(_) => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the metrics could not be encoded\n".to_owned(),
                ),
            }
        }
    };
    shared.live.answered("metrics", response.status().as_u16());
    response
}

/// Whether the client takes gzip (`Accept-Encoding: gzip`, not at `q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let quality = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .map_or(1.0, |q| q.trim().parse::<f32>().unwrap_or(0.0));
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && quality > 0.0
        })
}

async fn snapshot(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let response = match (&shared.token, shared.latest()) {
        (Some(token), _) if !authorized(&headers, token) => unauthorized(),
        (_, None) => {
            let mut response = text(
                StatusCode::SERVICE_UNAVAILABLE,
                "no collection has finished yet: the first one is running\n".to_owned(),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
            response
        }
        (_, Some(latest)) => {
            let etag = HeaderValue::from_str(&latest.etag).ok();
            let unchanged = headers
                .get(header::IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| {
                    v.split(',')
                        .any(|tag| tag.trim() == latest.etag || tag.trim() == "*")
                });
            let gzip = accepts_gzip(&headers);
            let mut response = if unchanged {
                StatusCode::NOT_MODIFIED.into_response()
            } else if gzip {
                let mut response = Body::from(latest.snapshot_gzip.clone()).into_response();
                response
                    .headers_mut()
                    .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                response
            } else {
                Body::from(latest.snapshot.clone()).into_response()
            };
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            if let Some(etag) = etag {
                headers.insert(header::ETAG, etag);
            }
            if let Ok(modified) = HeaderValue::from_str(
                &latest
                    .evaluated_at
                    .format("%a, %d %b %Y %H:%M:%S GMT")
                    .to_string(),
            ) {
                headers.insert(header::LAST_MODIFIED, modified);
            }
            response
        }
    };
    shared.live.answered("snapshot", response.status().as_u16());
    response
}

/// 200 while evaluations keep coming (or the first is still within two intervals of the
/// start), 503 once none has come for two intervals; the body says which, in one line.
async fn healthz(State(shared): State<Arc<Shared>>) -> Response {
    let (status, line) = shared.health();
    let response = text(status, format!("{line}\n"));
    shared.live.answered("healthz", response.status().as_u16());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: header::HeaderName, value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn only_the_exact_bearer_token_is_authorized() {
        let token = "0123456789abcdef0123";
        let auth = |v| with(header::AUTHORIZATION, v);
        assert!(authorized(&auth("Bearer 0123456789abcdef0123"), token));
        assert!(authorized(&auth("bearer 0123456789abcdef0123"), token));
        assert!(!authorized(&auth("Bearer 0123456789abcdef012"), token));
        assert!(!authorized(&auth("Bearer 0123456789abcdef01234"), token));
        assert!(!authorized(&auth("Basic 0123456789abcdef0123"), token));
        assert!(!authorized(&auth("0123456789abcdef0123"), token));
        assert!(!authorized(&HeaderMap::new(), token));
    }

    #[test]
    fn gzip_is_sent_only_when_taken() {
        let enc = |v| with(header::ACCEPT_ENCODING, v);
        assert!(accepts_gzip(&enc("gzip")));
        assert!(accepts_gzip(&enc("br, gzip;q=0.5")));
        assert!(accepts_gzip(&enc("*")));
        assert!(!accepts_gzip(&enc("gzip;q=0")));
        assert!(!accepts_gzip(&enc("br, deflate")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }
}
