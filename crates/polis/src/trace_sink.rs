//! An OTLP/gRPC trace collector that counts the spans it receives and
//! keeps nothing: the far end of `polis bench tracing`'s exports.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Context;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};

/// A running collector.
pub struct Sink {
    /// Where exporters send: `http://127.0.0.1:PORT`.
    pub endpoint: String,
    counter: Counter,
    serving: tokio::task::JoinHandle<()>,
}

#[derive(Clone, Default)]
struct Counter(Arc<AtomicU64>);

#[tonic::async_trait]
impl TraceService for Counter {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans: usize = request
            .into_inner()
            .resource_spans
            .iter()
            .flat_map(|resource| &resource.scope_spans)
            .map(|scope| scope.spans.len())
            .sum();
        self.0.fetch_add(spans as u64, Ordering::Relaxed);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Sink {
    /// Starts a collector on a port of loopback the OS picks.
    pub async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the trace collector")?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let counter = Counter::default();
        let server = tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(counter.clone()))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener));
        let serving = tokio::spawn(async move {
            if let Err(error) = server.await {
                eprintln!("polis: the trace collector stopped: {error}");
            }
        });
        Ok(Self {
            endpoint,
            counter,
            serving,
        })
    }

    /// Returns the spans received so far.
    pub fn spans(&self) -> u64 {
        self.counter.0.load(Ordering::Relaxed)
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.serving.abort();
    }
}
