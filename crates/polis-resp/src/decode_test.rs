//! Decoder tests: complete requests, every split point of a pipeline,
//! limits, every error message, and seeded garbage.
//!
//! Redis references: `processMultibulkBuffer` / `processInlineBuffer` in
//! Redis 7.0 `networking.c`, and `tests/unit/protocol.tcl`.

use bytes::BytesMut;

use super::*;

/// Words of a request, as byte vectors, for comparisons.
pub(super) type Words = Vec<Vec<u8>>;

pub(super) fn words(request: &Request) -> Words {
    request.args.iter().map(|arg| arg.to_vec()).collect()
}

pub(super) fn owned(words: &[&[u8]]) -> Words {
    words.iter().map(|word| word.to_vec()).collect()
}

/// Decodes requests from `buf` with `decoder` until it needs more bytes or
/// fails, checking that `Ok(None)` leaves `buf` untouched.
pub(super) fn drain(
    buf: &mut BytesMut,
    decoder: &mut Decoder,
) -> (Vec<Words>, Option<ProtocolError>) {
    let mut requests = Vec::new();
    loop {
        let before = buf.clone();
        match decoder.decode(buf) {
            Ok(Some(request)) => {
                assert!(buf.len() < before.len(), "a request consumed nothing");
                requests.push(words(&request));
            }
            Ok(None) => {
                assert_eq!(*buf, before, "Ok(None) consumed bytes");
                return (requests, None);
            }
            Err(error) => return (requests, Some(error)),
        }
    }
}

/// The two ways to decode: the stateless function, or a connection's
/// [`RequestDecoder`] that resumes across calls.
pub(super) enum Decoder {
    Stateless(DecodeLimits),
    Stateful(RequestDecoder),
}

impl Decoder {
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Request>, ProtocolError> {
        match self {
            Decoder::Stateless(limits) => decode_request(buf, limits),
            Decoder::Stateful(decoder) => decoder.decode(buf),
        }
    }
}

/// Decodes `input` delivered in one read, with the stateless function.
pub(super) fn decode_all(
    input: &[u8],
    limits: &DecodeLimits,
) -> (Vec<Words>, Option<ProtocolError>, usize) {
    let mut buf = BytesMut::from(input);
    let (requests, error) = drain(&mut buf, &mut Decoder::Stateless(*limits));
    (requests, error, buf.len())
}

/// Decodes `input` delivered in reads that end at `cuts`, stopping at the
/// first error as a server would.
pub(super) fn decode_split_with(
    input: &[u8],
    cuts: &[usize],
    decoder: &mut Decoder,
) -> (Vec<Words>, Option<ProtocolError>, usize) {
    let mut buf = BytesMut::new();
    let mut requests = Vec::new();
    let mut start = 0;
    for &end in cuts.iter().chain(std::iter::once(&input.len())) {
        buf.extend_from_slice(&input[start..end]);
        start = end;
        let (mut decoded, error) = drain(&mut buf, decoder);
        requests.append(&mut decoded);
        if error.is_some() {
            return (requests, error, buf.len());
        }
    }
    (requests, None, buf.len())
}

/// Decodes `input` split at `cuts` with a connection's [`RequestDecoder`],
/// after checking that the stateless function agrees.
pub(super) fn decode_split(
    input: &[u8],
    cuts: &[usize],
    limits: &DecodeLimits,
) -> (Vec<Words>, Option<ProtocolError>, usize) {
    let stateless = decode_split_with(input, cuts, &mut Decoder::Stateless(*limits));
    let stateful = decode_split_with(
        input,
        cuts,
        &mut Decoder::Stateful(RequestDecoder::new(*limits)),
    );
    assert_eq!(
        (&stateless.0, &stateless.1),
        (&stateful.0, &stateful.1),
        "stateless and stateful decoding differ at cuts {cuts:?}"
    );
    stateful
}

/// Decodes `input` fed one byte at a time.
pub(super) fn decode_bytewise(
    input: &[u8],
    limits: &DecodeLimits,
) -> (Vec<Words>, Option<ProtocolError>) {
    let cuts: Vec<usize> = (1..input.len()).collect();
    let (requests, error, _) = decode_split(input, &cuts, limits);
    (requests, error)
}

#[test]
fn decodes_complete_requests() {
    let table: &[(&[u8], &[&[u8]])] = &[
        (b"*1\r\n$4\r\nPING\r\n", &[b"PING"]),
        (
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n",
            &[b"SET", b"k", b"value"],
        ),
        (b"*2\r\n$4\r\nECHO\r\n$0\r\n\r\n", &[b"ECHO", b""]),
        // Bulk strings are binary safe.
        (
            b"*2\r\n$4\r\nECHO\r\n$4\r\n\r\n\0*\r\n",
            &[b"ECHO", b"\r\n\0*"],
        ),
        (b"PING\r\n", &[b"PING"]),
        (b"PING\n", &[b"PING"]),
        (b"set k \"a b\"\r\n", &[b"set", b"k", b"a b"]),
        (b"  ECHO   'it\\'s'  \n", &[b"ECHO", b"it's"]),
        // Skipped requests come out empty.
        (b"*0\r\n", &[]),
        (b"*-1\r\n", &[]),
        (b"*-10\r\n", &[]),
        (b"\r\n", &[]),
        (b"\n", &[]),
        (b"   \t \r\n", &[]),
    ];
    for (input, expected) in table {
        let mut buf = BytesMut::from(*input);
        let request = decode_request(&mut buf, &DecodeLimits::default());
        let request = request.unwrap_or_else(|error| panic!("{input:?}: {error}"));
        let request = request.unwrap_or_else(|| panic!("{input:?} reported incomplete"));
        assert_eq!(words(&request), owned(expected), "input {input:?}");
        assert_eq!(request.is_empty(), expected.is_empty());
        assert!(buf.is_empty(), "{input:?} left {buf:?}");
    }
}

#[test]
fn multibulk_arguments_share_the_read_buffer() {
    let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n"[..]);
    let start = buf.as_ptr() as usize;
    let request = decode_request(&mut buf, &DecodeLimits::default());
    let Ok(Some(request)) = request else {
        panic!("decoded {request:?}");
    };
    assert_eq!(request.args[0].as_ptr() as usize, start + 8);
    assert_eq!(request.args[1].as_ptr() as usize, start + 17);
}

/// A pipeline mixing every request form, as one byte string.
pub(super) fn pipeline() -> (Vec<u8>, Vec<Words>) {
    let big = vec![b'x'; 300];
    let mut input = Vec::new();
    let mut expected = Vec::new();
    input.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nva\r\nl\r\n");
    expected.push(owned(&[b"SET", b"key", b"va\r\nl"]));
    input.extend_from_slice(b"PING\r\n");
    expected.push(owned(&[b"PING"]));
    input.extend_from_slice(b"*0\r\n");
    expected.push(vec![]);
    input.extend_from_slice(b"*2\r\n$4\r\nECHO\r\n$300\r\n");
    input.extend_from_slice(&big);
    input.extend_from_slice(b"\r\n");
    expected.push(vec![b"ECHO".to_vec(), big]);
    input.extend_from_slice(b"\r\n");
    expected.push(vec![]);
    input.extend_from_slice(b"echo \"q\\x41\\n\" 'r s'\n");
    expected.push(owned(&[b"echo", b"qA\n", b"r s"]));
    input.extend_from_slice(b"*-1\r\n*1\r\n$0\r\n\r\n");
    expected.push(vec![]);
    expected.push(owned(&[b""]));
    (input, expected)
}

#[test]
fn every_split_point_of_a_pipeline_gives_the_same_requests() {
    let (input, expected) = pipeline();
    let limits = DecodeLimits::default();
    assert_eq!(decode_all(&input, &limits), (expected.clone(), None, 0));
    for cut in 0..=input.len() {
        assert_eq!(
            decode_split(&input, &[cut], &limits),
            (expected.clone(), None, 0),
            "cut at {cut}"
        );
    }
    assert_eq!(decode_bytewise(&input, &limits), (expected, None));
}

#[test]
fn partial_frames_within_limits_are_incomplete() {
    let limits = DecodeLimits::default();
    for input in [
        &b"*"[..],
        b"*3",
        b"*3\r",
        b"*3\r\n",
        b"*3\r\n$",
        b"*3\r\n$3\r",
        b"*3\r\n$3\r\nSET",
        b"*3\r\n$3\r\nSET\r",
        // Large declared lengths within the limits are simply awaited.
        b"*1048576\r\n",
        b"*1\r\n$536870912\r\n",
        b"*1\r\n$536870912\r\nsome bytes",
        b"PING",
        b"PING\r",
        b"SET k \"unterminated",
    ] {
        assert_eq!(
            decode_all(input, &limits),
            (vec![], None, input.len()),
            "{input:?}"
        );
    }
}

#[test]
fn error_messages_are_redis_7_0_texts() {
    let table = [
        (
            ProtocolError::InvalidMultibulkLength,
            "invalid multibulk length",
        ),
        (ProtocolError::InvalidBulkLength, "invalid bulk length"),
        (
            ProtocolError::ExpectedBulk { got: b'f' },
            "expected '$', got 'f'",
        ),
        (ProtocolError::TooBigInlineRequest, "too big inline request"),
        (
            ProtocolError::TooBigMultibulkCount,
            "too big mbulk count string",
        ),
        (ProtocolError::TooBigBulkCount, "too big bulk count string"),
        (
            ProtocolError::UnbalancedQuotes,
            "unbalanced quotes in request",
        ),
        (
            ProtocolError::BulkNotTerminated,
            "expected CRLF after bulk string",
        ),
        (
            ProtocolError::QueryBufferOverflow {
                len_required: 11,
                len_max: 10,
            },
            "query buffer limit reached (11 bytes needed, 10 allowed)",
        ),
    ];
    for (error, text) in table {
        assert_eq!(error.to_string(), text);
        assert_eq!(
            ReplyError::from(error).render(),
            format!("ERR Protocol error: {text}")
        );
    }
}

/// Inputs that must fail, with the error, under default limits.
fn failing_inputs() -> Vec<(Vec<u8>, ProtocolError)> {
    let long_line = vec![b'1'; limits::INLINE_LEN_MAX + 1];
    let mut too_big_count = b"*".to_vec();
    too_big_count.extend_from_slice(&long_line);
    let mut too_big_bulk_count = b"*1\r\n$".to_vec();
    too_big_bulk_count.extend_from_slice(&long_line);
    // A line whose first byte is wrong but which is also too long: like
    // Redis, the length is judged first.
    let mut too_big_not_bulk = b"*1\r\nx".to_vec();
    too_big_not_bulk.extend_from_slice(&long_line);
    let mut too_big_inline = vec![b'a'; limits::INLINE_LEN_MAX];
    too_big_inline.extend_from_slice(b"\r\n");
    vec![
        // protocol.tcl "Out of range multibulk length".
        (
            b"*20000000000\r\n".to_vec(),
            ProtocolError::InvalidMultibulkLength,
        ),
        (
            b"*99999999999\r\n".to_vec(),
            ProtocolError::InvalidMultibulkLength,
        ),
        (
            b"*1073741825\r\n".to_vec(),
            ProtocolError::InvalidMultibulkLength,
        ),
        (b"*\r\n".to_vec(), ProtocolError::InvalidMultibulkLength),
        (b"*+1\r\n".to_vec(), ProtocolError::InvalidMultibulkLength),
        (b"*01\r\n".to_vec(), ProtocolError::InvalidMultibulkLength),
        (b"*-0\r\n".to_vec(), ProtocolError::InvalidMultibulkLength),
        (b"*1 \r\n".to_vec(), ProtocolError::InvalidMultibulkLength),
        (b"*1\rX".to_vec(), ProtocolError::InvalidMultibulkLength),
        (
            b"*99999999999999999999\r\n".to_vec(),
            ProtocolError::InvalidMultibulkLength,
        ),
        // protocol.tcl "Wrong multibulk payload header".
        (
            b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n".to_vec(),
            ProtocolError::ExpectedBulk { got: b'f' },
        ),
        (
            b"*1\r\n:1\r\n".to_vec(),
            ProtocolError::ExpectedBulk { got: b':' },
        ),
        (
            b"*1\r\n*1\r\n".to_vec(),
            ProtocolError::ExpectedBulk { got: b'*' },
        ),
        (
            b"*1\r\n\r\n".to_vec(),
            ProtocolError::ExpectedBulk { got: b'\r' },
        ),
        (
            b"*1\r\n\xff\r\n".to_vec(),
            ProtocolError::ExpectedBulk { got: 0xff },
        ),
        // protocol.tcl "Negative multibulk payload length".
        (
            b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n".to_vec(),
            ProtocolError::InvalidBulkLength,
        ),
        // protocol.tcl "Out of range multibulk payload length".
        (
            b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$2000000000\r\n".to_vec(),
            ProtocolError::InvalidBulkLength,
        ),
        (
            b"*1\r\n$600000000\r\n".to_vec(),
            ProtocolError::InvalidBulkLength,
        ),
        (
            b"*1\r\n$536870913\r\n".to_vec(),
            ProtocolError::InvalidBulkLength,
        ),
        // protocol.tcl "Non-number multibulk payload length".
        (
            b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$blabla\r\n".to_vec(),
            ProtocolError::InvalidBulkLength,
        ),
        (b"*1\r\n$-1\r\n".to_vec(), ProtocolError::InvalidBulkLength),
        (b"*1\r\n$\r\n".to_vec(), ProtocolError::InvalidBulkLength),
        (b"*1\r\n$3\rX".to_vec(), ProtocolError::InvalidBulkLength),
        (
            b"*1\r\n$3\r\nfooXY".to_vec(),
            ProtocolError::BulkNotTerminated,
        ),
        (
            b"*1\r\n$3\r\nfoo\n\r".to_vec(),
            ProtocolError::BulkNotTerminated,
        ),
        (too_big_count, ProtocolError::TooBigMultibulkCount),
        (too_big_bulk_count, ProtocolError::TooBigBulkCount),
        (too_big_not_bulk, ProtocolError::TooBigBulkCount),
        (too_big_inline, ProtocolError::TooBigInlineRequest),
        // protocol.tcl "Unbalanced number of quotes".
        (
            b"set \"\"\"test-key\"\"\" test-value\r\nping\r\n".to_vec(),
            ProtocolError::UnbalancedQuotes,
        ),
        (b"SET k 'v\r\n".to_vec(), ProtocolError::UnbalancedQuotes),
        (
            b"SET k \"v\"x\r\n".to_vec(),
            ProtocolError::UnbalancedQuotes,
        ),
    ]
}

#[test]
fn malformed_requests_fail_with_redis_messages_at_every_split() {
    let limits = DecodeLimits::default();
    for (input, error) in failing_inputs() {
        let name = String::from_utf8_lossy(&input[..input.len().min(40)]).into_owned();
        let (requests, got, _) = decode_all(&input, &limits);
        assert_eq!((requests, got), (vec![], Some(error.clone())), "{name:?}");
        if input.len() < 100 {
            assert_eq!(
                decode_bytewise(&input, &limits),
                (vec![], Some(error)),
                "{name:?}"
            );
        }
    }
}

#[test]
fn long_lines_within_the_limit_are_accepted() {
    let limits = DecodeLimits::default();
    let mut inline = vec![b'a'; limits::INLINE_LEN_MAX];
    inline.push(b'\n');
    let (requests, error, rest) = decode_all(&inline, &limits);
    assert_eq!((requests.len(), error, rest), (1, None, 0));
    // A count line of exactly the limit is judged on its number.
    let mut count = b"*".to_vec();
    count.resize(limits::INLINE_LEN_MAX, b'1');
    count.extend_from_slice(b"\r\n");
    let (_, error, _) = decode_all(&count, &limits);
    assert_eq!(error, Some(ProtocolError::InvalidMultibulkLength));
}

#[test]
fn configured_limits_are_enforced() {
    let limits = DecodeLimits {
        bulk_len_max: 8,
        multibulk_len_max: 3,
        inline_len_max: 16,
        query_buffer_len_max: 64,
    };
    let table: &[(&[u8], Result<usize, ProtocolError>)] = &[
        (b"*3\r\n$1\r\na\r\n$1\r\nb\r\n$8\r\n12345678\r\n", Ok(1)),
        (b"*4\r\n", Err(ProtocolError::InvalidMultibulkLength)),
        (b"*1\r\n$9\r\n", Err(ProtocolError::InvalidBulkLength)),
        (
            b"*00000000000000001\r\n",
            Err(ProtocolError::TooBigMultibulkCount),
        ),
        (
            b"*1\r\n$00000000000000001\r\n",
            Err(ProtocolError::TooBigBulkCount),
        ),
        (b"0123456789abcdef\n", Ok(1)),
        (
            b"0123456789abcdefg\n",
            Err(ProtocolError::TooBigInlineRequest),
        ),
    ];
    for (input, expected) in table {
        let (requests, error, _) = decode_all(input, &limits);
        match expected {
            Ok(count) => assert_eq!((requests.len(), error), (*count, None), "{input:?}"),
            Err(expected) => assert_eq!(error.as_ref(), Some(expected), "{input:?}"),
        }
    }
    // The query buffer limit fails a request as soon as a declared length
    // shows it cannot fit, before its bytes arrive.
    let limits = DecodeLimits {
        query_buffer_len_max: 20,
        ..DecodeLimits::default()
    };
    let (_, error, _) = decode_all(b"*2\r\n$1\r\na\r\n$7\r\n", &limits);
    assert_eq!(
        error,
        Some(ProtocolError::QueryBufferOverflow {
            len_required: 24,
            len_max: 20
        })
    );
    let (requests, error, _) = decode_all(b"*2\r\n$1\r\na\r\n$3\r\n123\r\n", &limits);
    assert_eq!((requests.len(), error), (1, None));
    // An unterminated inline line counts against it too.
    let (_, error, _) = decode_all(&[b'a'; 21], &limits);
    assert_eq!(
        error,
        Some(ProtocolError::QueryBufferOverflow {
            len_required: 21,
            len_max: 20
        })
    );
}

#[test]
fn a_connection_decoder_resumes_after_the_last_complete_argument() {
    // 20,000 one-byte arguments arriving one argument per read: the
    // resumable decoder must finish the request with linear work. The
    // bound is loose (the count of header lines visited is not observable),
    // so this checks the outcome and the resume state's bookkeeping.
    let count = 20_000;
    let mut input = format!("*{count}\r\n").into_bytes();
    let mut cuts = Vec::new();
    for _ in 0..count {
        cuts.push(input.len());
        input.extend_from_slice(b"$1\r\nx\r\n");
    }
    let mut decoder = RequestDecoder::new(DecodeLimits::default());
    let mut buf = BytesMut::new();
    let mut start = 0;
    let mut decoded = None;
    for &end in cuts.iter().skip(1).chain(std::iter::once(&input.len())) {
        buf.extend_from_slice(&input[start..end]);
        start = end;
        if let Some(request) = decoder.decode(&mut buf).expect("valid input") {
            decoded = Some(request);
        }
        if decoded.is_none() {
            let Some(progress) = decoder.progress else {
                panic!("no progress kept at {end}");
            };
            assert_eq!(
                progress.pos, end,
                "progress stops at the last complete argument"
            );
        }
    }
    let decoded = decoded.expect("the request completes");
    assert_eq!(decoded.args.len(), count);
    assert!(buf.is_empty());
    assert_eq!(decoder.progress, None);
}
