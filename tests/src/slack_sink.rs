//! A local stand-in for a Slack incoming webhook (Slack is not AWS: tests need somewhere
//! to look at what was sent). It records every request and answers from a script:
//! status codes, headers and bodies, or no answer at all; 200 `ok` once the script runs out.

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tokio::net::TcpListener;

/// What the sink answers to one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A status, extra headers and a body.
    Status(u16, Vec<(&'static str, &'static str)>, &'static str),
    /// No answer (the connection stays open for a minute).
    Hang,
}

/// A plain reply with a status and no body.
pub fn status(code: u16) -> Reply {
    Reply::Status(code, Vec::new(), "")
}

/// A request the sink received.
#[derive(Debug, Clone)]
pub struct Received {
    /// When it arrived.
    pub at: Instant,
    /// Its path.
    pub path: String,
    /// Its `Content-Type`.
    pub content_type: Option<String>,
    /// Its body.
    pub body: Vec<u8>,
}

#[derive(Clone, Default)]
struct Shared {
    script: Arc<Mutex<VecDeque<Reply>>>,
    received: Arc<Mutex<Vec<Received>>>,
}

/// A running sink.
pub struct SlackSink {
    /// The webhook URL to store in the Slack secret.
    pub url: String,
    /// The URL's path, unique to this sink (the secret part of a real webhook URL).
    pub path: String,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl SlackSink {
    /// A sink that answers 200 to everything.
    pub async fn start() -> anyhow::Result<Self> {
        Self::with_script(Vec::new()).await
    }

    /// A sink that answers from `script` first. Panics if no port can be bound.
    pub async fn scripted(script: Vec<Reply>) -> Self {
        Self::with_script(script)
            .await
            .expect("a local port for the Slack sink")
    }

    async fn with_script(script: Vec<Reply>) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let secret = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        let path = format!("/services/T0CASCADE/B0CASCADE/{secret:016x}");
        let url = format!("http://{}{path}", listener.local_addr()?);
        let shared = Shared {
            script: Arc::new(Mutex::new(script.into())),
            ..Shared::default()
        };
        let app = Router::new()
            .route("/services/{*rest}", post(receive))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(SlackSink {
            url,
            path,
            shared,
            task,
        })
    }

    /// The requests received so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared
            .received
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// The bodies received so far, as text.
    pub fn bodies(&self) -> Vec<String> {
        self.received()
            .into_iter()
            .map(|r| String::from_utf8_lossy(&r.body).into_owned())
            .collect()
    }
}

async fn receive(
    State(shared): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Ok(mut received) = shared.received.lock() {
        received.push(Received {
            at: Instant::now(),
            path: uri.path().to_string(),
            content_type: headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            body: body.to_vec(),
        });
    }
    let reply = shared
        .script
        .lock()
        .ok()
        .and_then(|mut s| s.pop_front())
        .unwrap_or(Reply::Status(200, Vec::new(), "ok"));
    match reply {
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        Reply::Status(code, extra, text) => {
            let mut response = (
                StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                text,
            )
                .into_response();
            for (name, value) in extra {
                if let (Ok(name), Ok(value)) = (
                    axum::http::HeaderName::from_bytes(name.as_bytes()),
                    axum::http::HeaderValue::from_str(value),
                ) {
                    response.headers_mut().insert(name, value);
                }
            }
            response
        }
    }
}

impl Drop for SlackSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}
