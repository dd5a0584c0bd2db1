//! The async runtime openraft runs on: tokio, with one seam for
//! simulation.
//!
//! openraft draws its election timeouts and tick phases from
//! `AsyncRuntime::thread_rng()`. In production that is the operating
//! system's entropy, as with openraft's own tokio runtime. A simulation
//! sets a seed for its thread with [`set_simulation_seed`]; from then on
//! every draw on that thread comes from a generator derived from the seed,
//! so a run on a single-threaded runtime repeats exactly. openraft's watch
//! channels made in a simulation are deterministic ones too (see
//! [`watch`]); everything else is tokio's, as in openraft's runtime.

use std::cell::Cell;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::time::Duration;

use openraft::{AsyncRuntime, OptionalSend};
use openraft_rt_tokio::TokioRuntime;
use rand_openraft::rand_core::TryRng;
use rand_openraft::rngs::{StdRng, ThreadRng};
use rand_openraft::SeedableRng;

#[path = "runtime_watch.rs"]
pub mod watch;

thread_local! {
    /// The next seed handed to `thread_rng()` on this thread, when a
    /// simulation set one.
    static SIMULATION_SEED: Cell<Option<u64>> = const { Cell::new(None) };
}

/// Makes every later `thread_rng()` of openraft on this thread derive from
/// `seed` (`Some`), or draw from the operating system again (`None`).
pub fn set_simulation_seed(seed: Option<u64>) {
    SIMULATION_SEED.with(|cell| cell.set(seed));
}

thread_local! {
    /// The virtual instant a simulation started at, on this thread.
    static SIMULATION_ORIGIN: Cell<Option<tokio::time::Instant>> = const { Cell::new(None) };
}

/// Records the instant the simulation on this thread started at (`None`
/// when it ends), so every node of the run reads one virtual wall clock,
/// a restarted node included.
pub fn set_simulation_origin(origin: Option<tokio::time::Instant>) {
    SIMULATION_ORIGIN.with(|cell| cell.set(origin));
}

/// Returns the instant the simulation on this thread started at.
pub fn simulation_origin() -> Option<tokio::time::Instant> {
    SIMULATION_ORIGIN.with(Cell::get)
}

/// Returns true when a simulation set a seed on this thread.
pub fn is_simulated() -> bool {
    SIMULATION_SEED.with(|cell| cell.get().is_some())
}

/// SplitMix64: advances the seed so consecutive generators differ.
fn splitmix64(state: u64) -> u64 {
    let mut mixed = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    mixed ^ (mixed >> 31)
}

/// Returns the next simulation seed of this thread, if one was set.
fn next_simulation_seed() -> Option<u64> {
    SIMULATION_SEED.with(|cell| {
        let seed = cell.get()?;
        let next = splitmix64(seed);
        cell.set(Some(next));
        Some(next)
    })
}

/// Returns a random number: from the simulation's seed when a simulation
/// set one on this thread, else from the operating system.
pub fn random_u64() -> u64 {
    match next_simulation_seed() {
        Some(seed) => splitmix64(seed),
        None => rand::random(),
    }
}

/// The generator `thread_rng()` returns: the thread's OS-seeded generator
/// in production, a seeded one in simulation.
pub enum PolisRng {
    Os(ThreadRng),
    Seeded(Box<StdRng>),
}

impl TryRng for PolisRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        match self {
            Self::Os(rng) => rng.try_next_u32(),
            Self::Seeded(rng) => rng.try_next_u32(),
        }
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        match self {
            Self::Os(rng) => rng.try_next_u64(),
            Self::Seeded(rng) => rng.try_next_u64(),
        }
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        match self {
            Self::Os(rng) => rng.try_fill_bytes(dst),
            Self::Seeded(rng) => rng.try_fill_bytes(dst),
        }
    }
}

/// openraft's tokio runtime with a replaceable random source.
#[derive(Debug)]
pub struct PolisRuntime {
    inner: TokioRuntime,
}

impl AsyncRuntime for PolisRuntime {
    type JoinError = <TokioRuntime as AsyncRuntime>::JoinError;
    type JoinHandle<T: OptionalSend + 'static> = <TokioRuntime as AsyncRuntime>::JoinHandle<T>;
    type Sleep = <TokioRuntime as AsyncRuntime>::Sleep;
    type Instant = <TokioRuntime as AsyncRuntime>::Instant;
    type TimeoutError = <TokioRuntime as AsyncRuntime>::TimeoutError;
    type Timeout<R, T: Future<Output = R> + OptionalSend> =
        <TokioRuntime as AsyncRuntime>::Timeout<R, T>;
    type ThreadLocalRng = PolisRng;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        // openraft's tasks run in the span of whoever spawned them: the
        // tasks of a group's core in the group's span, so that their log
        // lines name the group (and the node).
        TokioRuntime::spawn(tracing::Instrument::in_current_span(future))
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        TokioRuntime::sleep(duration)
    }

    fn sleep_until(deadline: Self::Instant) -> Self::Sleep {
        TokioRuntime::sleep_until(deadline)
    }

    fn timeout<R, F: Future<Output = R> + OptionalSend>(
        duration: Duration,
        future: F,
    ) -> Self::Timeout<R, F> {
        TokioRuntime::timeout(duration, future)
    }

    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(
        deadline: Self::Instant,
        future: F,
    ) -> Self::Timeout<R, F> {
        TokioRuntime::timeout_at(deadline, future)
    }

    fn is_panic(join_error: &Self::JoinError) -> bool {
        TokioRuntime::is_panic(join_error)
    }

    fn thread_rng() -> Self::ThreadLocalRng {
        match next_simulation_seed() {
            Some(seed) => PolisRng::Seeded(Box::new(StdRng::seed_from_u64(seed))),
            None => PolisRng::Os(TokioRuntime::thread_rng()),
        }
    }

    type Mpsc = <TokioRuntime as AsyncRuntime>::Mpsc;
    type Watch = watch::PolisWatch;
    type Oneshot = <TokioRuntime as AsyncRuntime>::Oneshot;
    type Mutex<T: OptionalSend + 'static> = <TokioRuntime as AsyncRuntime>::Mutex<T>;

    fn new(threads: usize) -> Self {
        Self {
            inner: TokioRuntime::new(threads),
        }
    }

    fn block_on<F, T>(&mut self, future: F) -> T
    where
        F: Future<Output = T>,
    {
        self.inner.block_on(future)
    }

    fn spawn_blocking<F, T>(f: F) -> impl Future<Output = Result<T, io::Error>> + Send
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        TokioRuntime::spawn_blocking(f)
    }
}

#[cfg(test)]
mod tests {
    use rand_openraft::RngExt;

    use super::*;

    fn draws() -> Vec<u64> {
        (0..8)
            .map(|_| PolisRuntime::thread_rng().random_range(0..1_000_000u64))
            .collect()
    }

    #[test]
    fn passes_openraft_runtime_suite() {
        openraft::testing::runtime::Suite::<PolisRuntime>::test_all();
    }

    #[test]
    fn passes_openraft_runtime_suite_with_simulated_channels() {
        set_simulation_seed(Some(9));
        openraft::testing::runtime::Suite::<PolisRuntime>::test_all();
        set_simulation_seed(None);
    }

    #[test]
    fn a_seed_fixes_every_draw_and_clearing_it_restores_entropy() {
        set_simulation_seed(Some(42));
        let first = draws();
        set_simulation_seed(Some(42));
        assert_eq!(first, draws(), "same seed, same draws");
        set_simulation_seed(Some(43));
        assert_ne!(first, draws(), "another seed, other draws");
        set_simulation_seed(None);
        assert!(matches!(PolisRuntime::thread_rng(), PolisRng::Os(_)));
    }
}
