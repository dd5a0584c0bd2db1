//! The load generator against a real single-member etcd: loading, and
//! every workload closed and open loop over gRPC. etcd must be installed
//! (Debian's etcd-server): without it this test fails rather than skips.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

mod common;

use common::{expected_ops, short_spec, start_etcd, ALL_WORKLOADS};
use polis_bench::driver::{load, run};
use polis_bench::spec::{Mode, Target, Workload};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_workload_closed_and_open_loop() {
    let server = start_etcd().await;
    let target = Target::Etcd {
        endpoints: vec![server.addr.clone()],
    };
    let loaded = load(&target, &short_spec(Workload::Mixed, Mode::Closed, 1))
        .await
        .unwrap();
    assert_eq!(loaded, 1000);

    for workload in ALL_WORKLOADS {
        for mode in [Mode::Closed, Mode::Open { rate_per_s: 500 }] {
            let result = run(&target, &short_spec(workload, mode, 1000))
                .await
                .unwrap();
            let what = format!("{workload:?} {mode:?}");
            assert!(result.ops > 0, "{what}: {result:?}");
            assert_eq!(result.errors, 0, "{what}: {:?}", result.error_samples);
            assert_eq!(
                result.by_op.keys().map(String::as_str).collect::<Vec<_>>(),
                expected_ops(workload),
                "{what}"
            );
            if let Mode::Open { .. } = mode {
                assert!((475..=525).contains(&result.ops), "{what}: {}", result.ops);
            }
        }
    }
    server.stop().await;
}
