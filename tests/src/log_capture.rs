//! The tracing output of the test process, captured: the real handlers the local Lambda
//! server runs in-process log through it, as they log to stdout in Lambda (JSON lines, as
//! template.yaml's `LogFormat: JSON` sets). Installed once per process; every later
//! [`install`] returns the same capture.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Everything logged in the process since [`install`].
#[derive(Clone, Default)]
pub struct LogCapture {
    buffer: Arc<Mutex<Vec<u8>>>,
}

/// One write into the capture.
pub struct CaptureWriter {
    buffer: Arc<Mutex<Vec<u8>>>,
}

impl Write for CaptureWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut buffer) = self.buffer.lock() {
            buffer.extend_from_slice(bytes);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogCapture {
    type Writer = CaptureWriter;

    fn make_writer(&'a self) -> Self::Writer {
        CaptureWriter {
            buffer: self.buffer.clone(),
        }
    }
}

impl LogCapture {
    /// The lines so far.
    pub fn text(&self) -> String {
        self.buffer
            .lock()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
}

/// Installs the process's subscriber (JSON lines, filtered by `directives` as
/// `cascade_lambda::logging::filter` reads them, e.g. `info,cascade_aws=debug`), once;
/// returns the capture. Fails if another subscriber was installed first.
pub fn install(directives: &str) -> anyhow::Result<LogCapture> {
    static CAPTURE: OnceLock<Result<LogCapture, String>> = OnceLock::new();
    CAPTURE
        .get_or_init(|| {
            let capture = LogCapture::default();
            let layer = tracing_subscriber::fmt::layer()
                .json()
                .with_writer(capture.clone());
            tracing_subscriber::registry()
                .with(cascade_lambda::logging::filter(Some(directives)))
                .with(layer)
                .try_init()
                .map_err(|e| format!("another subscriber is installed: {e}"))?;
            Ok(capture)
        })
        .clone()
        .map_err(|e| anyhow::anyhow!(e))
}
