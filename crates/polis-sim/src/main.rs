//! `polis-sim`: replays one seed exactly, or runs many.
//!
//! ```text
//! polis-sim --seed N [--nodes 3|5] [--shards S] [--duration-ms D] [--lying-disks]
//!                    [--verbose] [--trace-out FILE] [--history-out FILE]
//! polis-sim --seeds COUNT [--start S] [--nodes 3|5] [--shards S] [--duration-ms D]
//!                         [--lying-disks]
//! ```
//!
//! `--lying-disks` makes every disk acknowledge writes before they are
//! durable: runs should then fail, which shows the checkers have teeth.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use polis_sim::{run, RunReport, SimOptions};

const USAGE: &str = "usage: polis-sim --seed N [--nodes 3|5] [--shards S] [--duration-ms D] \
                     [--lying-disks] [--verbose] [--trace-out FILE] [--history-out FILE]\n       \
                     polis-sim --seeds COUNT [--start S] [--nodes 3|5] [--shards S] \
                     [--duration-ms D] [--lying-disks]";

/// How many seeds pass between two progress lines.
const PROGRESS_EVERY: u64 = 100;

/// Where `--seed` writes the whole trace and the history.
#[derive(Default)]
struct Outputs {
    trace: Option<String>,
    history: Option<String>,
}

enum Mode {
    One {
        seed: u64,
        verbose: bool,
        outputs: Outputs,
    },
    Many {
        count: u64,
        start: u64,
    },
}

fn number(flag: &str, value: Option<String>) -> Result<u64, String> {
    let value = value.ok_or_else(|| format!("{flag} needs a value"))?;
    value
        .parse()
        .map_err(|_| format!("{flag}: not a number: {value}"))
}

fn parse(args: impl Iterator<Item = String>) -> Result<(Mode, SimOptions), String> {
    let mut args = args.peekable();
    let mut seed = None;
    let mut count = None;
    let mut start = 0;
    let mut verbose = false;
    let mut options = SimOptions::default();
    let mut outputs = Outputs::default();
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--seed" => seed = Some(number(&flag, args.next())?),
            "--seeds" => count = Some(number(&flag, args.next())?),
            "--start" => start = number(&flag, args.next())?,
            "--nodes" => {
                let nodes = number(&flag, args.next())?;
                if nodes != 3 && nodes != 5 {
                    return Err("--nodes must be 3 or 5".into());
                }
                options.nodes = Some(nodes as usize);
            }
            "--shards" => {
                let shards = number(&flag, args.next())?;
                if !(1..=16).contains(&shards) {
                    return Err("--shards must be between 1 and 16".into());
                }
                options.shards = Some(shards as usize);
            }
            "--duration-ms" => options.duration_ms = Some(number(&flag, args.next())?),
            "--verbose" => verbose = true,
            "--lying-disks" => options.lying_disks = true,
            "--trace-out" => {
                outputs.trace = Some(args.next().ok_or("--trace-out needs a file".to_owned())?);
                options.keep_trace = true;
            }
            "--history-out" => {
                outputs.history = Some(args.next().ok_or("--history-out needs a file".to_owned())?);
            }
            "--help" | "-h" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    match (seed, count) {
        (Some(seed), None) => Ok((
            Mode::One {
                seed,
                verbose,
                outputs,
            },
            options,
        )),
        (None, Some(count)) => Ok((Mode::Many { count, start }, options)),
        _ => Err("give exactly one of --seed and --seeds".into()),
    }
}

fn print_tail(report: &RunReport) {
    println!("  last events of the trace:");
    for stamped in &report.tail {
        println!(
            "    {:>10.6} s {:?}",
            stamped.time_us as f64 / 1e6,
            stamped.event
        );
    }
}

fn write_outputs(report: &RunReport, outputs: &Outputs) -> std::io::Result<()> {
    if let Some(path) = &outputs.trace {
        let mut text = report.full_trace.join("\n");
        text.push('\n');
        std::fs::write(path, text)?;
    }
    if let Some(path) = &outputs.history {
        let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
        polis_verify::history::write_jsonl(&mut file, &report.history)?;
    }
    Ok(())
}

fn run_one(seed: u64, verbose: bool, outputs: &Outputs, options: &SimOptions) -> ExitCode {
    // POLIS_SIM_LOG=polis_server=info prints the nodes' logs of one run
    // (without node names or times: read them beside --trace-out).
    if let Ok(filter) = std::env::var("POLIS_SIM_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .without_time()
            .with_writer(std::io::stderr)
            .init();
    }
    let report = run(seed, options);
    print!("{}", report.summary());
    if let Err(error) = write_outputs(&report, outputs) {
        eprintln!("polis-sim: cannot write the outputs: {error}");
        return ExitCode::from(2);
    }
    if verbose || !report.passed() {
        print_tail(&report);
    }
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn run_many(count: u64, start: u64, options: &SimOptions) -> ExitCode {
    let began = Instant::now();
    let mut failed = Vec::new();
    let mut slowest = (Duration::ZERO, start);
    let mut virtual_total = Duration::ZERO;
    for seed in start..start.saturating_add(count) {
        let report = run(seed, options);
        virtual_total += report.virtual_time;
        if report.wall_time > slowest.0 {
            slowest = (report.wall_time, seed);
        }
        if !report.passed() {
            print!("FAILED {}", report.summary());
            failed.push(seed);
        }
        let done = seed - start + 1;
        if done.is_multiple_of(PROGRESS_EVERY) {
            println!(
                "{done}/{count} seeds, {} failed, {:.1} s",
                failed.len(),
                began.elapsed().as_secs_f64()
            );
        }
    }
    let elapsed = began.elapsed();
    println!(
        "{count} seeds from {start}: {} passed, {} failed; {:.1} s wall ({:.3} s per seed, \
         slowest {:.3} s for seed {}), {:.0} s virtual",
        count - failed.len() as u64,
        failed.len(),
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() / count.max(1) as f64,
        slowest.0.as_secs_f64(),
        slowest.1,
        virtual_total.as_secs_f64()
    );
    for seed in &failed {
        println!("replay: {}", options.replay_command(*seed));
    }
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn main() -> ExitCode {
    let (mode, options) = match parse(std::env::args().skip(1)) {
        Ok(parsed) => parsed,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("polis-sim: {message}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match mode {
        Mode::One {
            seed,
            verbose,
            outputs,
        } => run_one(seed, verbose, &outputs, &options),
        Mode::Many { count, start } => run_many(count, start, &options),
    }
}
