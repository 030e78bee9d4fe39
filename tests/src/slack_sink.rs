//! A local stand-in for a Slack incoming webhook: records every message it is sent and
//! answers 200 (Slack is not AWS; tests need somewhere to look at what was sent).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use tokio::net::TcpListener;

/// A running sink.
pub struct SlackSink {
    /// The webhook URL to store in the Slack secret.
    pub url: String,
    /// Every body received, in order.
    pub bodies: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl SlackSink {
    /// Starts a sink on a free port of 127.0.0.1.
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let url = format!(
            "http://{}/services/T000/B000/local-sink",
            listener.local_addr()?
        );
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .route("/services/{*rest}", post(receive))
            .with_state(bodies.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(SlackSink { url, bodies, task })
    }

    /// The messages received so far.
    pub fn received(&self) -> Vec<String> {
        self.bodies.lock().map(|b| b.clone()).unwrap_or_default()
    }
}

async fn receive(State(bodies): State<Arc<Mutex<Vec<String>>>>, body: String) -> &'static str {
    if let Ok(mut b) = bodies.lock() {
        b.push(body);
    }
    "ok"
}

impl Drop for SlackSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}
