//! OpenTelemetry traces across processes: a SET through `polis gateway`
//! in front of 3 nodes, all exporting over OTLP to a collector this test
//! runs (spans kept in memory), is one trace with spans of the gateway,
//! the shard leader that ran it, and both followers that received its
//! entry.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{wait_for_opt, Cluster};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;

/// One span as the collector got it: who sent it, its name, its trace.
#[derive(Debug, Clone)]
struct Received {
    instance: String,
    service: String,
    name: String,
    trace_id: Vec<u8>,
}

/// An OTLP/gRPC collector that keeps what it receives.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<Received>>>);

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut kept = self.0.lock().unwrap();
        for resource_spans in request.into_inner().resource_spans {
            let attribute = |key: &str| {
                resource_spans
                    .resource
                    .iter()
                    .flat_map(|resource| &resource.attributes)
                    .find(|attribute| attribute.key == key)
                    .and_then(|attribute| attribute.value.as_ref()?.value.clone())
                    .map(|value| match value {
                        Value::StringValue(text) => text,
                        other => format!("{other:?}"),
                    })
                    .unwrap_or_default()
            };
            let (instance, service) = (attribute("service.instance.id"), attribute("service.name"));
            for scope in &resource_spans.scope_spans {
                for span in &scope.spans {
                    kept.push(Received {
                        instance: instance.clone(),
                        service: service.clone(),
                        name: span.name.clone(),
                        trace_id: span.trace_id.clone(),
                    });
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_through_the_gateway_is_one_trace_over_every_node_it_touched() {
    let sink = Sink::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector = format!("http://{}", listener.local_addr().unwrap());
    let serving = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(sink.clone()))
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    // Batches leave every 100 ms, not every 5 s.
    std::env::set_var("OTEL_BSP_SCHEDULE_DELAY", "100");
    let tracing = ["--otlp-endpoint", collector.as_str(), "--trace-ratio", "1"];
    let cluster = Cluster::start(3, &tracing);
    cluster.wait_ready(Duration::from_secs(60)).await;
    let mut gateway = Gateway(start_gateway(&cluster.resp_addrs(), &tracing));
    let addr = gateway_addr(&mut gateway.0).await;

    let client = redis::Client::open(format!("redis://{addr}")).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("SET")
        .arg("traced-key")
        .arg("v")
        .query_async(&mut connection)
        .await
        .unwrap();

    // The trace of the SET: the one with a gateway span and a node span
    // that ran it, then spans from every node its entry reached.
    let by_trace = |spans: &[Received]| {
        let mut traces: BTreeMap<Vec<u8>, Vec<Received>> = BTreeMap::new();
        for span in spans {
            traces
                .entry(span.trace_id.clone())
                .or_default()
                .push(span.clone());
        }
        traces
    };
    let found = wait_for_opt(Duration::from_secs(30), || async {
        let spans = sink.0.lock().unwrap().clone();
        by_trace(&spans).into_values().find(|trace| {
            let nodes: BTreeSet<&str> = trace
                .iter()
                .filter(|span| span.service == "polis-node")
                .map(|span| span.instance.as_str())
                .collect();
            trace.iter().any(|span| span.name == "gateway.request") && nodes.len() == 3
        })
    })
    .await;
    let Some(trace) = found else {
        let spans = sink.0.lock().unwrap().clone();
        let seen: BTreeSet<(String, String, usize)> = by_trace(&spans)
            .values()
            .flat_map(|trace| {
                trace
                    .iter()
                    .map(|span| (span.instance.clone(), span.name.clone(), trace.len()))
            })
            .collect();
        panic!("no trace of the SET over the gateway and 3 nodes; spans by (instance, name, spans in their trace): {seen:?}");
    };
    let names: BTreeSet<(&str, &str)> = trace
        .iter()
        .map(|span| (span.instance.as_str(), span.name.as_str()))
        .collect();
    for expected in [
        "gateway.request",
        "node.request",
        "raft.propose",
        "raft.replicate",
        "raft.append",
    ] {
        assert!(
            trace.iter().any(|span| span.name == expected),
            "no {expected} span in the trace: {names:?}"
        );
    }
    // Each follower's span of the entry is in the SET's trace.
    let appended: BTreeSet<&str> = trace
        .iter()
        .filter(|span| span.name == "raft.append")
        .map(|span| span.instance.as_str())
        .collect();
    assert_eq!(appended.len(), 2, "{names:?}");
    serving.abort();
}

/// A gateway process, stopped when dropped (a failed assertion too).
struct Gateway(std::process::Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `polis gateway` on an OS-picked port in front of `seeds`.
fn start_gateway(seeds: &[String], extra: &[&str]) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_polis"))
        .args([
            "gateway",
            "--listen",
            "127.0.0.1:0",
            "--cluster",
            &seeds.join(","),
        ])
        .args(extra)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start polis gateway")
}

/// Reads the address the gateway prints once it listens (and drains its
/// output after, so that its later lines find a reader).
async fn gateway_addr(gateway: &mut std::process::Child) -> String {
    use std::io::BufRead;
    let stdout = gateway.stdout.take().expect("the gateway's output");
    let (found, address) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut found = Some(found);
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let printed = line
                .strip_prefix("polis gateway: listening on ")
                .and_then(|rest| rest.split_whitespace().next());
            if let (Some(addr), Some(sender)) = (printed, found.take_if(|_| true)) {
                let _ = sender.send(addr.to_owned());
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(30), address)
        .await
        .expect("the gateway listens within 30 s")
        .expect("the gateway printed its address")
}
