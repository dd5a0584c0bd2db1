//! Fuzzes `polis_resp::decode_request` with the properties every caller
//! relies on:
//! - no panic, whatever the bytes;
//! - `Ok(None)` consumes nothing, `Ok(Some(_))` consumes something;
//! - the RESP codec never disagrees with the header pre-check
//!   (`ProtocolError::Codec` is unreachable);
//! - how the bytes are split into reads never changes the outcome, and a
//!   connection's resuming `RequestDecoder` agrees with the stateless
//!   `decode_request`;
//! - every decoded request, re-encoded as a multibulk frame, decodes to the
//!   same arguments.
//!
//! The first input byte picks the limits and where to split the rest.

#![no_main]

use bytes::{BufMut, BytesMut};
use libfuzzer_sys::fuzz_target;
use polis_resp::{decode_request, DecodeLimits, ProtocolError, Request, RequestDecoder};

/// Requests decoded before the buffer ran dry or an error.
type Outcome = (Vec<Request>, Option<ProtocolError>);

fn drain(
    buf: &mut BytesMut,
    limits: &DecodeLimits,
    decoder: Option<&mut RequestDecoder>,
    requests: &mut Vec<Request>,
) -> Option<ProtocolError> {
    let mut decoder = decoder;
    loop {
        let len_before = buf.len();
        let decoded = match decoder.as_deref_mut() {
            Some(decoder) => decoder.decode(buf),
            None => decode_request(buf, limits),
        };
        match decoded {
            Ok(Some(request)) => {
                assert!(buf.len() < len_before, "a request consumed nothing");
                requests.push(request);
            }
            Ok(None) => {
                // The decoder only ever consumes from the front, so an
                // unchanged length means nothing was consumed.
                assert_eq!(buf.len(), len_before, "Ok(None) consumed bytes");
                return None;
            }
            Err(error) => {
                assert!(
                    !matches!(error, ProtocolError::Codec(_)),
                    "codec disagreed: {error}"
                );
                return Some(error);
            }
        }
    }
}

/// Decodes `data` arriving in reads of the given sizes (the last read
/// takes the rest), with a connection's decoder when `stateful`.
fn decode_in_reads(
    data: &[u8],
    read_lens: &[usize],
    limits: &DecodeLimits,
    stateful: bool,
) -> Outcome {
    let mut buf = BytesMut::new();
    let mut requests = Vec::new();
    let mut decoder = stateful.then(|| RequestDecoder::new(*limits));
    let mut rest = data;
    let mut chunks = Vec::new();
    for &len in read_lens {
        let (chunk, tail) = rest.split_at(len.min(rest.len()));
        chunks.push(chunk);
        rest = tail;
    }
    chunks.push(rest);
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        if let Some(error) = drain(&mut buf, limits, decoder.as_mut(), &mut requests) {
            return (requests, Some(error));
        }
    }
    (requests, None)
}

fn encode_multibulk(request: &Request) -> BytesMut {
    let mut out = BytesMut::new();
    out.put_slice(format!("*{}\r\n", request.args.len()).as_bytes());
    for arg in &request.args {
        out.put_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.put_slice(arg);
        out.put_slice(b"\r\n");
    }
    out
}

fuzz_target!(|input: &[u8]| {
    let Some((&control, data)) = input.split_first() else {
        return;
    };
    let limits = if control & 1 == 0 {
        DecodeLimits::default()
    } else {
        DecodeLimits {
            bulk_len_max: 32,
            multibulk_len_max: 8,
            inline_len_max: 64,
            query_buffer_len_max: 1 << 20,
        }
    };
    let whole = decode_in_reads(data, &[], &limits, false);
    let cut = usize::from(control >> 1) * data.len() / 127;
    let split = decode_in_reads(data, &[cut], &limits, false);
    assert_eq!(
        whole, split,
        "outcome changed with a read boundary at {cut}"
    );
    // Many small reads, so the connection decoder resumes often.
    let read_len = 1 + usize::from(control >> 1) % 16;
    let read_lens = vec![read_len; data.len() / read_len];
    let resumed = decode_in_reads(data, &read_lens, &limits, true);
    assert_eq!(
        whole, resumed,
        "RequestDecoder disagreed, reads of {read_len} bytes"
    );

    for request in &whole.0 {
        if request.args.is_empty() {
            continue;
        }
        let mut frame = encode_multibulk(request);
        let again = decode_request(&mut frame, &DecodeLimits::default());
        match again {
            Ok(Some(again)) => assert_eq!(again.args, request.args),
            other => panic!("re-encoded {request:?} decoded as {other:?}"),
        }
        assert!(frame.is_empty());
    }
});
