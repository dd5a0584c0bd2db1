//! Reply frames from the nodes: where one ends (redis-protocol's decoders
//! find it), whether it is a push, what error it carries, and its value
//! when the gateway merges the replies of several nodes.
//!
//! A node answers a connection in the protocol that connection chose
//! (HELLO), so each upstream connection splits its frames with the
//! decoder of its own protocol; a frame is forwarded as the bytes the
//! node wrote, never re-encoded, unless it is merged.

use bytes::{Bytes, BytesMut};
use polis_resp::{ProtocolVersion, Reply, ReplyError};
use polis_types::limits::GATEWAY_REPLY_BYTES_MAX;
use redis_protocol::{resp2, resp3};

/// One whole reply frame, as the node wrote it.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub bytes: Bytes,
}

/// A node sent something that is not a reply frame, or one too large.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("unreadable reply from a node: {0}")]
    Protocol(String),
    #[error("a reply from a node is larger than {GATEWAY_REPLY_BYTES_MAX} bytes")]
    TooLarge,
}

impl Frame {
    /// Takes the first whole frame off `buf`, if there is one.
    ///
    /// # Errors
    /// The bytes are not RESP of `protocol`, or the frame is too large.
    pub fn split(
        buf: &mut BytesMut,
        protocol: ProtocolVersion,
    ) -> Result<Option<Self>, FrameError> {
        if buf.is_empty() {
            return Ok(None);
        }
        let len = match protocol {
            ProtocolVersion::Resp2 => resp2::decode::decode_range(buf)
                .map_err(|error| FrameError::Protocol(error.to_string()))?
                .map(|(_, len)| len),
            ProtocolVersion::Resp3 => resp3::decode::complete::decode_range(buf)
                .map_err(|error| FrameError::Protocol(error.to_string()))?
                .map(|(_, len)| len),
        };
        match len {
            Some(len) => Ok(Some(Self {
                bytes: buf.split_to(len).freeze(),
            })),
            None if buf.len() > GATEWAY_REPLY_BYTES_MAX => Err(FrameError::TooLarge),
            None => Ok(None),
        }
    }

    /// Returns a frame of `reply` encoded for `protocol`.
    pub fn of(reply: &Reply, protocol: ProtocolVersion) -> Self {
        let mut out = BytesMut::new();
        polis_resp::encode_reply(reply, protocol, &mut out);
        Self {
            bytes: out.freeze(),
        }
    }

    /// Returns true for a RESP3 push (pub/sub messages and confirmations).
    pub fn is_push(&self) -> bool {
        self.bytes.first() == Some(&b'>')
    }

    /// Returns the error line of an error reply (`MOVED 12 host:port`).
    pub fn error(&self) -> Option<String> {
        match self.bytes.first() {
            Some(b'-') => {
                let line = &self.bytes[1..];
                let end = line
                    .iter()
                    .position(|&byte| byte == b'\r')
                    .unwrap_or(line.len());
                Some(String::from_utf8_lossy(&line[..end]).into_owned())
            }
            Some(b'!') => match self.value(ProtocolVersion::Resp3) {
                Some(Reply::Error(error)) => Some(error.to_string()),
                _ => None,
            },
            _ => None,
        }
    }

    /// Returns the frame's value (for merging), if it decodes.
    pub fn value(&self, protocol: ProtocolVersion) -> Option<Reply> {
        match protocol {
            ProtocolVersion::Resp2 => resp2::decode::decode(&self.bytes)
                .ok()
                .flatten()
                .map(|(frame, _)| from_resp2(frame)),
            ProtocolVersion::Resp3 => resp3::decode::complete::decode(&self.bytes)
                .ok()
                .flatten()
                .map(|(frame, _)| from_resp3(frame)),
        }
    }
}

fn from_resp2(frame: resp2::types::OwnedFrame) -> Reply {
    use resp2::types::OwnedFrame;
    match frame {
        OwnedFrame::SimpleString(data) => {
            Reply::Simple(String::from_utf8_lossy(&data).into_owned())
        }
        OwnedFrame::Error(line) => Reply::Error(ReplyError::Other(line)),
        OwnedFrame::Integer(value) => Reply::Integer(value),
        OwnedFrame::BulkString(data) => Reply::Bulk(Bytes::from(data)),
        OwnedFrame::Array(items) => Reply::Array(items.into_iter().map(from_resp2).collect()),
        OwnedFrame::Null => Reply::Null,
    }
}

fn from_resp3(frame: resp3::types::OwnedFrame) -> Reply {
    use resp3::types::OwnedFrame;
    match frame {
        OwnedFrame::BlobString { data, .. } => Reply::Bulk(Bytes::from(data)),
        OwnedFrame::SimpleString { data, .. } => {
            Reply::Simple(String::from_utf8_lossy(&data).into_owned())
        }
        OwnedFrame::SimpleError { data, .. } => Reply::Error(ReplyError::Other(data)),
        OwnedFrame::BlobError { data, .. } => Reply::Error(ReplyError::Other(
            String::from_utf8_lossy(&data).into_owned(),
        )),
        OwnedFrame::Number { data, .. } => Reply::Integer(data),
        OwnedFrame::Double { data, .. } => Reply::Double(data),
        OwnedFrame::Boolean { data, .. } => Reply::Boolean(data),
        OwnedFrame::Null => Reply::Null,
        OwnedFrame::Array { data, .. } => Reply::Array(data.into_iter().map(from_resp3).collect()),
        OwnedFrame::Push { data, .. } => Reply::Push(data.into_iter().map(from_resp3).collect()),
        OwnedFrame::Set { data, .. } => Reply::Set(data.into_iter().map(from_resp3).collect()),
        OwnedFrame::Map { data, .. } => Reply::Map(
            data.into_iter()
                .map(|(key, value)| (from_resp3(key), from_resp3(value)))
                .collect(),
        ),
        OwnedFrame::VerbatimString { data, format, .. } => Reply::Verbatim {
            format: match format {
                resp3::types::VerbatimStringFormat::Text => "txt",
                resp3::types::VerbatimStringFormat::Markdown => "mkd",
            }
            .to_owned(),
            text: Bytes::from(data),
        },
        OwnedFrame::BigNumber { data, .. } => Reply::Bulk(Bytes::from(data)),
        _ => Reply::Error(ReplyError::err("unexpected reply from a node")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_whole_in_either_protocol() {
        let mut buf = BytesMut::from(&b"*2\r\n$-1\r\n$3\r\nfoo\r\n+OK\r\n$5\r\nhel"[..]);
        let first = Frame::split(&mut buf, ProtocolVersion::Resp2)
            .unwrap()
            .unwrap();
        assert_eq!(&first.bytes[..], b"*2\r\n$-1\r\n$3\r\nfoo\r\n");
        assert_eq!(
            first.value(ProtocolVersion::Resp2),
            Some(Reply::Array(vec![
                Reply::Null,
                Reply::Bulk(Bytes::from_static(b"foo"))
            ]))
        );
        let second = Frame::split(&mut buf, ProtocolVersion::Resp2)
            .unwrap()
            .unwrap();
        assert_eq!(&second.bytes[..], b"+OK\r\n");
        assert_eq!(
            Frame::split(&mut buf, ProtocolVersion::Resp2).unwrap(),
            None
        );
        assert_eq!(&buf[..], b"$5\r\nhel");

        let mut buf =
            BytesMut::from(&b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n%1\r\n+a\r\n:1\r\n"[..]);
        let push = Frame::split(&mut buf, ProtocolVersion::Resp3)
            .unwrap()
            .unwrap();
        assert!(push.is_push());
        let map = Frame::split(&mut buf, ProtocolVersion::Resp3)
            .unwrap()
            .unwrap();
        assert!(!map.is_push());
        assert!(buf.is_empty());
    }

    #[test]
    fn errors_are_read_from_the_line() {
        let mut buf = BytesMut::from(&b"-MOVED 12 127.0.0.1:7001\r\n"[..]);
        let frame = Frame::split(&mut buf, ProtocolVersion::Resp2)
            .unwrap()
            .unwrap();
        assert_eq!(frame.error().as_deref(), Some("MOVED 12 127.0.0.1:7001"));
        let mut buf = BytesMut::from(&b"!9\r\nTRYAGAIN \r\n"[..]);
        let frame = Frame::split(&mut buf, ProtocolVersion::Resp3)
            .unwrap()
            .unwrap();
        assert_eq!(frame.error().as_deref(), Some("TRYAGAIN "));
        assert_eq!(
            Frame::of(&Reply::Integer(3), ProtocolVersion::Resp2).error(),
            None
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut buf = BytesMut::from(&b"?what\r\n"[..]);
        assert!(Frame::split(&mut buf, ProtocolVersion::Resp2).is_err());
    }
}
