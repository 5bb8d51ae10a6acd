//! Logs: `tracing` to stderr, readable locally and JSON in production; one
//! span per request carrying its request id.

mod writer;

use std::io::{IsTerminal, Write};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;
use tracing::field::{Field, Visit};
use tracing::{Event, Instrument, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogFormat, LogSettings};
use crate::controllers;
use crate::metrics::Metrics;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    /// The id of the request being handled, for error bodies.
    static CURRENT_REQUEST_ID: String;
}

/// The id of the request this code runs for, if any.
pub fn current_request_id() -> Option<String> {
    CURRENT_REQUEST_ID.try_with(Clone::clone).ok()
}

/// Installs the global subscriber. `RUST_LOG` wins over `log.level`.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // stderr: stdout stays free for what the one-shot commands print.
    // Colour only for a person at a terminal, never into a file or a pipe.
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        // Its own error report would go to the same (possibly closed) stderr.
        .log_internal_errors(false)
        .with_writer(writer::LogWriter::global());
    // A second init (tests spawn many apps in one process) keeps the first.
    let _ = match settings.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .finish()
            .with(ClientMistakesAreNotErrors)
            .try_init(),
        LogFormat::Pretty => builder.finish().with(ClientMistakesAreNotErrors).try_init(),
    };
}

/// actix-http logs malformed requests and connections the client broke off
/// ("stream error: ...") at ERROR: anyone could flood the error log, and
/// none of it is a fault of the server. Such events are logged again at
/// DEBUG, under `user_api::http`, and the original is dropped.
struct ClientMistakesAreNotErrors;

impl<S: Subscriber> Layer<S> for ClientMistakesAreNotErrors {
    fn event_enabled(&self, event: &Event<'_>, _: Context<'_, S>) -> bool {
        let metadata = event.metadata();
        if *metadata.level() != Level::ERROR || metadata.target() != "actix_http::h1::dispatcher" {
            return true;
        }
        let mut message = MessageText::default();
        event.record(&mut message);
        tracing::debug!(target: "user_api::http", "connection closed: {}", message.0);
        false
    }
}

#[derive(Default)]
struct MessageText(String);

impl Visit for MessageText {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

/// Waits (briefly) for the log lines so far to be written: before exiting.
pub fn flush() {
    writer::LogWriter::global().flush(std::time::Duration::from_secs(1));
}

/// A fatal error, as one plain line for the person who ran the command.
pub fn print_error(error: &anyhow::Error) {
    flush();
    let _ = writeln!(std::io::stderr().lock(), "user-api: {error:#}");
}

/// Milliseconds, to the microsecond: `0.219`, not `0.21853399999999998`.
pub fn elapsed_ms(elapsed: std::time::Duration) -> f64 {
    elapsed.as_micros() as f64 / 1e3
}

/// A client's `X-Request-Id` if it is short and printable, else a new one.
fn request_id(request: &ServiceRequest) -> HeaderValue {
    request
        .headers()
        .get(&REQUEST_ID)
        .filter(|value| {
            let bytes = value.as_bytes();
            !bytes.is_empty() && bytes.len() <= 128 && bytes.iter().all(|b| b.is_ascii_graphic())
        })
        .cloned()
        .unwrap_or_else(new_request_id)
}

/// A random per-process prefix and a counter: unique across instances
/// without asking the OS for randomness on every request.
fn new_request_id() -> HeaderValue {
    static PREFIX: LazyLock<String> =
        LazyLock::new(|| uuid::Uuid::new_v4().simple().to_string()[..16].to_string());
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let id = format!("{}{:08x}", *PREFIX, COUNTER.fetch_add(1, Ordering::Relaxed));
    HeaderValue::from_str(&id).unwrap_or(HeaderValue::from_static("unknown"))
}

/// Wraps each request in a span with its id, echoes the id, logs the outcome.
pub async fn trace_requests(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = request_id(&request);
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.path(),
        request_id = id.to_str().unwrap_or_default(),
    );
    let started = Instant::now();
    let id_text = id.to_str().unwrap_or_default().to_string();
    let mut response = CURRENT_REQUEST_ID
        .scope(
            id_text,
            async {
                if let Some(refusal) = controllers::refuse_before_routing(&request) {
                    return Ok(request.into_response(refusal).map_into_right_body());
                }
                let response = next.call(request).await?;
                Ok::<_, actix_web::Error>(controllers::envelope_bare_not_found(response))
            }
            .instrument(span.clone()),
        )
        .await?;
    let status = response.status().as_u16();
    if let Some(metrics) = response.request().app_data::<web::Data<Metrics>>() {
        let route = response
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".into());
        let method = response.request().method().as_str();
        metrics
            .http_requests
            .with_label_values(&[method, route.as_str(), response.status().as_str()])
            .inc();
        metrics
            .http_duration
            .with_label_values(&[method, route.as_str()])
            .observe(started.elapsed().as_secs_f64());
    }
    span.in_scope(|| {
        tracing::info!(
            status,
            elapsed_ms = elapsed_ms(started.elapsed()),
            "request finished"
        )
    });
    response.headers_mut().insert(REQUEST_ID, id);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::elapsed_ms;

    #[test]
    fn elapsed_milliseconds_have_at_most_three_decimals() {
        for nanos in [218_533_990, 1, 999, 1_000_001, 12_345_678_901, 7_777_777] {
            let shown = elapsed_ms(Duration::from_nanos(nanos)).to_string();
            let decimals = shown.split('.').nth(1).map_or(0, str::len);
            assert!(decimals <= 3, "{nanos} ns shown as {shown}");
        }
        assert_eq!(elapsed_ms(Duration::from_nanos(218_533_990)), 218.533);
    }
}
