//! Garbage, oversized lengths and half frames get a protocol error and a
//! closed connection, never a crash or a hang; other clients keep working
//! meanwhile.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

mod common;

use std::time::Duration;

use common::Cluster;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `bytes`, then reads until the server closes or 5 s pass; returns
/// what the server sent.
async fn send_and_drain(addr: &str, bytes: &[u8], close_write: bool) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    if close_write {
        stream.shutdown().await.unwrap();
    }
    let mut received = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut received)).await;
    received
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_closes_only_the_offending_connection() {
    let cluster = Cluster::start(1, &[]);
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    let addr = cluster.node(leader).resp.clone();

    // A well-behaved client keeps working the whole time.
    let good_addr = addr.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_flag = stop.clone();
    let good = tokio::spawn(async move {
        let client = redis::Client::open(format!("redis://{good_addr}/")).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        let mut round = 0u64;
        while !stop_flag.load(std::sync::atomic::Ordering::SeqCst) && round < 100_000 {
            let _: () = redis::cmd("SET")
                .arg("good")
                .arg(round)
                .query_async(&mut connection)
                .await
                .unwrap();
            let value: u64 = redis::cmd("GET")
                .arg("good")
                .query_async(&mut connection)
                .await
                .unwrap();
            assert_eq!(value, round);
            round += 1;
        }
        round
    });

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "huge multibulk count",
            b"*99999999999\r\n".to_vec(),
            "-ERR Protocol error: invalid multibulk length",
        ),
        (
            "bulk over proto-max-bulk-len",
            b"*1\r\n$999999999999\r\n".to_vec(),
            "-ERR Protocol error: invalid bulk length",
        ),
        (
            "negative bulk",
            b"*1\r\n$-5\r\n".to_vec(),
            "-ERR Protocol error: invalid bulk length",
        ),
        (
            "not a bulk",
            b"*1\r\n:5\r\n".to_vec(),
            "-ERR Protocol error: expected '$', got ':'",
        ),
        (
            "unbalanced quotes",
            b"SET \"abc\r\n".to_vec(),
            "-ERR Protocol error: unbalanced quotes",
        ),
        (
            "junk count",
            b"*x\r\n".to_vec(),
            "-ERR Protocol error: invalid multibulk length",
        ),
    ];
    for (name, bytes, expected) in &cases {
        let received = send_and_drain(&addr, bytes, false).await;
        let text = String::from_utf8_lossy(&received);
        assert!(text.starts_with(expected), "{name}: got {text:?}");
    }

    // Half frames: the server waits for the rest and closes quietly when
    // the client goes away.
    for half in [
        &b"*3\r\n$3\r\nSET\r\n$1\r\nk"[..],
        b"*2\r\n$4\r\nEC",
        b"*1\r\n",
        b"PIN",
    ] {
        let received = send_and_drain(&addr, half, true).await;
        assert!(received.is_empty(), "half frame {half:?} got {received:?}");
    }

    // Seeded random garbage never kills the node.
    let seed: u64 = std::env::var("POLIS_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1234);
    println!("garbage seed {seed} (set POLIS_TEST_SEED to replay)");
    let mut state = seed;
    for _ in 0..50 {
        let mut bytes = Vec::with_capacity(256);
        for _ in 0..256 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            bytes.push((state & 0xff) as u8);
        }
        let _ = send_and_drain(&addr, &bytes, true).await;
    }

    // Pipelined valid commands after all that still work.
    let received = send_and_drain(&addr, b"PING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n", true).await;
    assert_eq!(received, b"+PONG\r\n$2\r\nhi\r\n");

    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let rounds = good.await.unwrap();
    assert!(rounds > 0, "the good client made progress");
}
