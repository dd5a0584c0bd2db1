//! Traces across processes: a request's W3C trace context travels from the
//! gateway to the node (in-band, before the command) and from a shard's
//! leader to its followers (in the peer RPC's metadata), so that one
//! request is one trace over every node it touched.
//!
//! Spans for traces are made under the target [`TARGET`] at trace level:
//! the log filters never enable them, the OpenTelemetry layer does when an
//! exporter is set (the `polis` binary's `--otlp-endpoint`), and then
//! [`enabled`] says so.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use opentelemetry::trace::TraceContextExt;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The target of the spans that make traces.
pub const TARGET: &str = "polis_trace";

/// The metadata key (and header name) of the W3C trace context.
pub const TRACEPARENT: &str = "traceparent";

/// The command a gateway sends a node before a traced request: its one
/// argument is the request's `traceparent`. The node answers nothing and
/// runs the next request within that trace.
pub const TRACE_COMMAND: &str = "POLIS.TRACE";

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Says that spans are exported (set once, by the binary, with its
/// exporter).
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Returns true when spans are exported: only then is a request span
/// worth making.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

static EXPORTED: AtomicU64 = AtomicU64::new(0);

/// Counts `spans` handed to the exporter (by the binary's exporter).
pub fn count_exported(spans: usize) {
    EXPORTED.fetch_add(spans as u64, Ordering::Relaxed);
}

/// Returns the spans handed to the exporter since the process started
/// (`polis_trace_spans_exported_total`).
pub fn exported() -> u64 {
    EXPORTED.load(Ordering::Relaxed)
}

/// A text carrier of trace context: a W3C propagator writes and reads it.
#[derive(Default)]
struct Carrier(HashMap<String, String>);

impl opentelemetry::propagation::Injector for Carrier {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

impl opentelemetry::propagation::Extractor for Carrier {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// Returns the W3C `traceparent` of `span` when it belongs to a sampled
/// trace (and a propagator is set: the binary sets one with its exporter).
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    if !context.span().span_context().is_sampled() {
        return None;
    }
    let mut carrier = Carrier::default();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut carrier);
    });
    carrier.0.remove(TRACEPARENT)
}

/// Makes `span` a child of the remote span that `traceparent` names.
pub fn adopt(span: &tracing::Span, traceparent: &str) {
    let mut carrier = Carrier::default();
    carrier
        .0
        .insert(TRACEPARENT.to_owned(), traceparent.to_owned());
    let context =
        opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&carrier));
    // A span the layer does not know (tracing off) has no parent to set.
    let _ = span.set_parent(context);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_an_exporter_there_is_no_context_to_carry() {
        assert!(!enabled());
        assert_eq!(traceparent(&tracing::Span::current()), None);
        // Adopting a context with no layer to hold it changes nothing.
        adopt(
            &tracing::Span::current(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        );
    }
}
