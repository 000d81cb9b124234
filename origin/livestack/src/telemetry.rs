//! Logs on stderr (text or JSON lines) and, when asked for, OpenTelemetry
//! span export over OTLP/HTTP.
//!
//! - **Logs.** One subscriber for the process, filtered by `LIVESTACK_LOG`
//!   (`EnvFilter` syntax, default `info`). In JSON, each line carries
//!   `timestamp` (RFC 3339, UTC), `level`, `target`, `fields` (the message
//!   and the event's fields), `span` (the current span: its `name` and
//!   fields, e.g. `session.id` inside an SRT publisher's span) and `spans`
//!   (every span from the root), and, while spans are exported, `trace_id`
//!   and `span_id` of the current span (hex, as in the exported traces).
//! - **Traces.** With an OTLP endpoint, every span the filter lets through
//!   is exported when it closes (tracing-opentelemetry; the events in it
//!   become span events): batched (the SDK's batch processor and its
//!   `OTEL_BSP_*` settings), protobuf-encoded, POSTed to
//!   `<endpoint>/v1/traces` (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` wins if
//!   set, `OTEL_EXPORTER_OTLP_HEADERS` adds headers). The resource names the
//!   process: `service.name` (`OTEL_SERVICE_NAME`, default
//!   `livestack-<subcommand>`), `service.instance.id` (the node id, or the
//!   host name), `service.version`, and `OTEL_RESOURCE_ATTRIBUTES`.
//!   Without an endpoint there is no exporter, no OpenTelemetry layer and
//!   no per-event cost.
//!
//! The exporter's HTTP requests run on a one-thread runtime of their own, so
//! that they neither compete with media tasks nor depend on the main runtime
//! still running: `main` drops the main runtime first (every task ends, and
//! with it every open span, such as a publisher's still connected), then
//! [`Telemetry::shutdown`] sends what is left.

use std::{fmt, time::Duration};

use anyhow::{Context as _, Result, bail};
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::{Resource, trace::SdkTracerProvider};
use tracing::{Event, Subscriber};
use tracing_subscriber::{
    fmt::{
        FmtContext, FormatEvent, FormatFields,
        format::{Format, Json, Writer},
    },
    layer::SubscriberExt as _,
    registry::LookupSpan,
    util::SubscriberInitExt as _,
};

/// The log line format on stderr (`--log-format`).
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Where and as whom spans are exported.
#[derive(Debug, Clone)]
pub(crate) struct OtlpSettings {
    /// The collector's OTLP/HTTP base URL, e.g. `http://collector:4318`;
    /// spans go to `<endpoint>/v1/traces`.
    pub(crate) endpoint: String,
    /// `service.name` of the resource.
    pub(crate) service_name: String,
    /// `service.instance.id` of the resource.
    pub(crate) instance_id: String,
}

/// How long one export request may take (the OTLP default).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The installed logging and tracing; [`Telemetry::shutdown`] flushes the
/// spans not yet exported.
#[must_use = "call shutdown() before exiting, or the last spans are lost"]
pub(crate) struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports the spans still queued and stops the exporter (a no-op
    /// without one). Call it outside the async runtime: it blocks until the
    /// last batch is sent or has failed.
    pub(crate) fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown()
        {
            // Still a log line in the chosen format: the subscriber stays.
            tracing::warn!(error = %e, "flushing the last spans at exit failed");
        }
    }
}

/// Installs the process-wide subscriber: logs on stderr in `format`, and
/// span export when `otlp` is given. Call it once, from outside the async
/// runtime.
pub(crate) fn init(format: LogFormat, otlp: Option<&OtlpSettings>) -> Result<Telemetry> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LIVESTACK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let provider = otlp.map(tracer_provider).transpose()?;
    let otel = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer(env!("CARGO_PKG_NAME"))));
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    match format {
        LogFormat::Text => registry.with(fmt).init(),
        LogFormat::Json => registry
            .with(fmt.json().event_format(JsonLine {
                inner: tracing_subscriber::fmt::format().json(),
                trace_ids: provider.is_some(),
            }))
            .init(),
    }
    Ok(Telemetry { provider })
}

/// The tracer provider exporting to `otlp.endpoint` with a batch processor.
fn tracer_provider(otlp: &OtlpSettings) -> Result<SdkTracerProvider> {
    let base = otlp.endpoint.trim_end_matches('/');
    if !base.starts_with("http://") {
        bail!(
            "--otlp-endpoint {base:?}: only http:// collectors are supported (send to a local \
             OpenTelemetry Collector and let it forward over TLS)"
        );
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(format!("{base}/v1/traces"))
        .with_timeout(EXPORT_TIMEOUT)
        .with_http_client(ExportClient::new()?)
        .build()
        .context("--otlp-endpoint")?;
    let resource = Resource::builder()
        .with_service_name(otlp.service_name.clone())
        .with_attributes([
            opentelemetry::KeyValue::new("service.instance.id", otlp.instance_id.clone()),
            opentelemetry::KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
        ])
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// This machine's host name (`service.instance.id` of a process without a
/// node id).
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "localhost".to_owned())
}

/// The exporter's HTTP client: hyper on a one-worker runtime of its own.
///
/// The SDK's batch processor exports from its own thread by blocking on the
/// exporter's future, outside any Tokio runtime; hyper needs one. Each
/// request is spawned on this runtime and its join handle awaited, so the
/// connection pool is driven between exports too, and exports keep working
/// after the main runtime has stopped.
#[derive(Debug)]
struct ExportClient {
    http: opentelemetry_http::hyper::HyperClient,
    runtime: tokio::runtime::Runtime,
}

impl ExportClient {
    fn new() -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("otlp-export")
            .enable_all()
            .build()
            .context("starting the OTLP export runtime")?;
        Ok(Self {
            http: opentelemetry_http::hyper::HyperClient::with_default_connector(
                EXPORT_TIMEOUT,
                None,
            ),
            runtime,
        })
    }
}

#[async_trait::async_trait]
impl HttpClient for ExportClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let http = self.http.clone();
        self.runtime
            .spawn(async move { http.send_bytes(request).await })
            .await?
    }
}

/// tracing-subscriber's JSON lines, plus `trace_id` and `span_id` of the
/// current OpenTelemetry span when spans are exported.
///
/// The OpenTelemetry layer attaches a span's context to the thread while the
/// span is entered, so the current context is the event's span.
struct JsonLine {
    inner: Format<Json>,
    trace_ids: bool,
}

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let ids = self
            .trace_ids
            .then(|| {
                opentelemetry::Context::map_current(|cx| {
                    let span = cx.span();
                    let sc = span.span_context();
                    sc.is_valid().then(|| (sc.trace_id(), sc.span_id()))
                })
            })
            .flatten();
        let Some((trace_id, span_id)) = ids else {
            return self.inner.format_event(ctx, writer, event);
        };
        // The inner line is one JSON object and a newline: reopen the
        // object and add the two members.
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        let object = line.trim_end().strip_suffix('}').ok_or(fmt::Error)?;
        writeln!(
            writer,
            "{object},\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\"}}"
        )
    }
}
