//! The process's log and, when an OTLP endpoint is set, its traces: the
//! spans under [`polis_trace::TARGET`] go to an OpenTelemetry
//! collector over OTLP/gRPC; the log filter never sees them, so they cost
//! nothing unless exported.

use anyhow::{bail, Context};
use opentelemetry::trace::TracerProvider;
use opentelemetry::KeyValue;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, SpanData, SpanExporter};
use opentelemetry_sdk::Resource;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// Where and how much to trace.
#[derive(Debug, Clone, clap::Args)]
pub struct TraceArgs {
    /// Exports traces over OTLP/gRPC to this collector, e.g.
    /// `http://127.0.0.1:4317`; `in-process` builds the spans and drops
    /// them in the process (what tracing costs without the export). No
    /// traces unless set.
    #[arg(long, env = "POLIS_OTLP_ENDPOINT", value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// The share of requests that begin a trace here (0 to 1); a request
    /// that arrives within a trace follows its sampling.
    #[arg(
        long,
        env = "POLIS_TRACE_RATIO",
        default_value_t = 0.01,
        value_name = "RATIO"
    )]
    pub trace_ratio: f64,
}

/// What the spans are of: the service and, for a node, its id.
pub struct Origin {
    pub service: &'static str,
    pub instance: String,
}

/// Sets up the log (`format` text or json, filtered by `filter`) and, with
/// `--otlp-endpoint`, the trace export.
pub fn init(format: &str, filter: &str, traces: &TraceArgs, origin: Origin) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let filter = EnvFilter::try_new(filter).context("bad log filter")?;
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let log: Box<dyn Layer<Registry> + Send + Sync> = match format {
        "json" => fmt.json().with_filter(filter).boxed(),
        "text" => fmt.with_filter(filter).boxed(),
        other => bail!("unknown log format {other:?} (text or json)"),
    };
    let mut layers = vec![log];
    if let Some(endpoint) = &traces.otlp_endpoint {
        layers.push(exporting(endpoint, traces.trace_ratio, origin)?);
    }
    tracing_subscriber::registry()
        .with(layers)
        .try_init()
        .context("setting up the log")?;
    Ok(())
}

/// The layer that exports the trace spans to `endpoint`.
fn exporting(
    endpoint: &str,
    ratio: f64,
    origin: Origin,
) -> anyhow::Result<Box<dyn Layer<Registry> + Send + Sync>> {
    if !(0.0..=1.0).contains(&ratio) {
        bail!("--trace-ratio must be within 0 and 1, not {ratio}");
    }
    // The gRPC client needs a tokio runtime of its own: the exporter's
    // batches are sent from a thread of the SDK, whatever the process runs.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("polis-otlp")
        .enable_all()
        .build()
        .context("starting the trace exporter's runtime")?;
    let exporter = if endpoint == IN_PROCESS {
        Exporter::InProcess
    } else {
        let _in_runtime = runtime.enter();
        Exporter::Otlp(Box::new(
            opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()
                .with_context(|| format!("the OTLP exporter to {endpoint}"))?,
        ))
    };
    // It serves the exporter for the process's life.
    std::mem::forget(runtime);
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            ratio,
        ))))
        .with_resource(
            Resource::builder()
                .with_service_name(origin.service)
                .with_attribute(KeyValue::new("service.instance.id", origin.instance))
                .build(),
        )
        .build();
    let tracer = provider.tracer("polis");
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    PROVIDER.set(provider).ok();
    polis_trace::enable();
    let spans = Targets::new().with_target(polis_trace::TARGET, tracing::Level::TRACE);
    Ok(tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(spans)
        .boxed())
}

/// The `--otlp-endpoint` that keeps the spans in the process.
const IN_PROCESS: &str = "in-process";

/// Where the batches of spans go, each counted first
/// ([`polis_trace::count_exported`]).
#[derive(Debug)]
enum Exporter {
    Otlp(Box<opentelemetry_otlp::SpanExporter>),
    /// Dropped: the spans were built, batched and handed over, which is
    /// what tracing costs the process besides sending them.
    InProcess,
}

impl SpanExporter for Exporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        polis_trace::count_exported(batch.len());
        match self {
            Self::Otlp(exporter) => exporter.export(batch).await,
            Self::InProcess => Ok(()),
        }
    }

    fn shutdown_with_timeout(&self, timeout: std::time::Duration) -> OTelSdkResult {
        match self {
            Self::Otlp(exporter) => exporter.shutdown_with_timeout(timeout),
            Self::InProcess => Ok(()),
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        match self {
            Self::Otlp(exporter) => exporter.force_flush(),
            Self::InProcess => Ok(()),
        }
    }

    fn set_resource(&mut self, resource: &Resource) {
        if let Self::Otlp(exporter) = self {
            exporter.set_resource(resource);
        }
    }
}

static PROVIDER: std::sync::OnceLock<SdkTracerProvider> = std::sync::OnceLock::new();

/// Sends the spans not yet exported, before the process ends.
pub fn flush() {
    if let Some(provider) = PROVIDER.get() {
        if let Err(error) = provider.force_flush() {
            eprintln!("polis: flushing traces failed: {error}");
        }
    }
}
