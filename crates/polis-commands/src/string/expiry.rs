//! The expiry options SET and GETEX share (EX, PX, EXAT, PXAT, KEEPTTL,
//! PERSIST) and their conversion to absolute deadlines.

use bytes::Bytes;
use polis_resp::ReplyError;

use crate::args::{is, parse_i64};

/// How a SET or GETEX changes the key's deadline.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ExpireOption {
    /// SET clears the deadline; GETEX leaves it alone.
    #[default]
    Unset,
    /// SET KEEPTTL: keep the current deadline.
    KeepTtl,
    /// GETEX PERSIST: remove the deadline.
    Persist,
    /// EX seconds (relative).
    Ex(Bytes),
    /// PX milliseconds (relative).
    Px(Bytes),
    /// EXAT unix-seconds.
    ExAt(Bytes),
    /// PXAT unix-milliseconds.
    PxAt(Bytes),
}

impl ExpireOption {
    /// Returns true for EXAT/PXAT, whose deadline may already be past.
    pub fn is_absolute(&self) -> bool {
        matches!(self, ExpireOption::ExAt(_) | ExpireOption::PxAt(_))
    }

    /// Returns the absolute deadline in ms for EX/PX/EXAT/PXAT at `now_ms`,
    /// None for the other options.
    ///
    /// # Errors
    /// `ERR value is not an integer or out of range`, or `ERR invalid
    /// expire time in '<command>' command` for a value <= 0 or one whose
    /// conversion to ms overflows.
    pub fn deadline(&self, now_ms: u64, command: &str) -> Result<Option<u64>, ReplyError> {
        let (raw, seconds, relative) = match self {
            ExpireOption::Ex(raw) => (raw, true, true),
            ExpireOption::Px(raw) => (raw, false, true),
            ExpireOption::ExAt(raw) => (raw, true, false),
            ExpireOption::PxAt(raw) => (raw, false, false),
            _ => return Ok(None),
        };
        let invalid = || invalid_expire_time(command);
        let value = parse_i64(raw).ok_or(ReplyError::NotInteger)?;
        if value <= 0 {
            return Err(invalid());
        }
        let mut millis = if seconds {
            value.checked_mul(1000).ok_or_else(invalid)?
        } else {
            value
        };
        if relative {
            let now = i64::try_from(now_ms).map_err(|_| invalid())?;
            millis = millis.checked_add(now).ok_or_else(invalid)?;
        }
        u64::try_from(millis).map(Some).map_err(|_| invalid())
    }
}

/// Returns `ERR invalid expire time in '<command>' command`.
pub fn invalid_expire_time(command: &str) -> ReplyError {
    ReplyError::err(format!("invalid expire time in '{command}' command"))
}

/// The options of SET (`for_set`) or GETEX, parsed as Redis's
/// `parseExtendedStringArgumentsOrReply` does.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExtendedArgs {
    pub nx: bool,
    pub xx: bool,
    pub get: bool,
    /// SET IFEQ: write only if the key holds this string.
    pub ifeq: Option<Bytes>,
    pub expire: ExpireOption,
}

/// Parses `options`.
///
/// # Errors
/// `ERR syntax error` for an unknown option, a missing value, or two
/// options that exclude each other (repeating the same one is allowed;
/// the last value wins).
pub fn parse_extended(options: &[Bytes], for_set: bool) -> Result<ExtendedArgs, ReplyError> {
    let mut parsed = ExtendedArgs::default();
    let mut index = 0;
    // Bounded: index advances by one or two per round.
    while let Some(option) = options.get(index) {
        let next = options.get(index + 1);
        let expire_kind_is = |kind: fn(&ExpireOption) -> bool| {
            matches!(parsed.expire, ExpireOption::Unset) || kind(&parsed.expire)
        };
        let conditional = parsed.nx || parsed.xx || parsed.ifeq.is_some();
        if for_set && is(option, "nx") && (!conditional || parsed.nx) {
            parsed.nx = true;
        } else if for_set && is(option, "xx") && (!conditional || parsed.xx) {
            parsed.xx = true;
        } else if let (true, true, Some(value)) = (for_set, is(option, "ifeq"), next) {
            if conditional && parsed.ifeq.is_none() {
                return Err(ReplyError::Syntax);
            }
            parsed.ifeq = Some(value.clone());
            index += 1;
        } else if for_set && is(option, "get") {
            parsed.get = true;
        } else if for_set
            && is(option, "keepttl")
            && expire_kind_is(|e| matches!(e, ExpireOption::KeepTtl))
        {
            parsed.expire = ExpireOption::KeepTtl;
        } else if !for_set
            && is(option, "persist")
            && expire_kind_is(|e| matches!(e, ExpireOption::Persist))
        {
            parsed.expire = ExpireOption::Persist;
        } else if let (true, Some(value)) = (is(option, "ex"), next) {
            if !expire_kind_is(|e| matches!(e, ExpireOption::Ex(_))) {
                return Err(ReplyError::Syntax);
            }
            parsed.expire = ExpireOption::Ex(value.clone());
            index += 1;
        } else if let (true, Some(value)) = (is(option, "px"), next) {
            if !expire_kind_is(|e| matches!(e, ExpireOption::Px(_))) {
                return Err(ReplyError::Syntax);
            }
            parsed.expire = ExpireOption::Px(value.clone());
            index += 1;
        } else if let (true, Some(value)) = (is(option, "exat"), next) {
            if !expire_kind_is(|e| matches!(e, ExpireOption::ExAt(_))) {
                return Err(ReplyError::Syntax);
            }
            parsed.expire = ExpireOption::ExAt(value.clone());
            index += 1;
        } else if let (true, Some(value)) = (is(option, "pxat"), next) {
            if !expire_kind_is(|e| matches!(e, ExpireOption::PxAt(_))) {
                return Err(ReplyError::Syntax);
            }
            parsed.expire = ExpireOption::PxAt(value.clone());
            index += 1;
        } else {
            return Err(ReplyError::Syntax);
        }
        index += 1;
    }
    Ok(parsed)
}
