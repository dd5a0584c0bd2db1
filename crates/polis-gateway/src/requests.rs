//! Request logging, sampled: one line per sampled request, written when
//! its reply goes out, under the target `polis_gateway::requests`.
//!
//! A line names the client (id and address), the user, the command, how
//! many arguments it had, how long the reply took and how it ended (`ok`
//! or the error's code, such as `NOPERM` or `RATELIMITED`). It never holds
//! keys, values or passwords: those are the users' data.

use std::net::SocketAddr;
use std::time::Instant;

/// How many requests are logged: a share between 0 (none, the default)
/// and 1 (every one).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sampling {
    ratio: f64,
}

impl Sampling {
    /// # Errors
    /// `ratio` is not between 0 and 1.
    pub fn new(ratio: f64) -> Result<Self, String> {
        if (0.0..=1.0).contains(&ratio) {
            Ok(Self { ratio })
        } else {
            Err(format!(
                "a request log sample of {ratio} is not between 0 (none) and 1 (every request)"
            ))
        }
    }

    /// Decides whether the next request is logged.
    pub fn pick(&self) -> bool {
        self.ratio >= 1.0 || (self.ratio > 0.0 && rand::random::<f64>() < self.ratio)
    }
}

/// A request picked for the log, until its reply goes out.
#[derive(Debug)]
pub(crate) struct Sampled {
    started: Instant,
    command: String,
    args: usize,
    user: String,
}

impl Sampled {
    pub fn new(command: &str, args: usize, user: &str) -> Self {
        Self {
            started: Instant::now(),
            command: command.to_owned(),
            args,
            user: user.to_owned(),
        }
    }

    /// Writes the line, once the reply (its encoded frame) is known.
    pub fn log(&self, client: u64, peer: SocketAddr, reply: &[u8]) {
        let micros = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        tracing::info!(
            client,
            addr = %peer,
            user = %self.user,
            command = %self.command,
            args = self.args,
            micros,
            outcome = %outcome(reply),
            "request"
        );
    }
}

/// `ok`, or the code of an error reply (RESP2 `-CODE ...`, RESP3 blob
/// errors `!len\r\nCODE ...`).
fn outcome(reply: &[u8]) -> String {
    let text = match reply.first() {
        Some(b'-') => &reply[1..],
        Some(b'!') => reply
            .iter()
            .position(|byte| *byte == b'\n')
            .map_or(&[][..], |end| &reply[end + 1..]),
        _ => return "ok".to_owned(),
    };
    let code = text
        .iter()
        .take_while(|byte| byte.is_ascii_alphanumeric() || **byte == b'_')
        .take(32)
        .copied()
        .collect::<Vec<u8>>();
    String::from_utf8_lossy(&code).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_name_the_error_code_or_ok() {
        assert_eq!(outcome(b"+OK\r\n"), "ok");
        assert_eq!(outcome(b"$3\r\nabc\r\n"), "ok");
        assert_eq!(
            outcome(b"-NOPERM User bob has no permissions\r\n"),
            "NOPERM"
        );
        assert_eq!(outcome(b"!21\r\nRATELIMITED slow down\r\n"), "RATELIMITED");
        assert_eq!(outcome(b"-\r\n"), "");
    }

    #[test]
    fn samples_are_between_none_and_all() {
        assert!(Sampling::new(-0.1).is_err());
        assert!(Sampling::new(1.5).is_err());
        assert!(Sampling::new(f64::NAN).is_err());
        let none = Sampling::new(0.0).expect("0");
        let all = Sampling::new(1.0).expect("1");
        assert!((0..1000).all(|_| !none.pick()));
        assert!((0..1000).all(|_| all.pick()));
    }
}
