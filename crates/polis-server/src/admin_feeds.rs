//! The admin endpoint's change feeds (see [`crate::feed`]):
//! `GET /changefeeds` shows the newest feeds this node's replicas hold and
//! how far each replica is (its version, its outbox), `PUT /changefeeds`
//! sets them as `CONFIG SET changefeeds` does.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use polis_resp::ReplyError;
use polis_types::GroupId;
use serde::{Deserialize, Serialize};

use crate::feed::{Feed, Feeds};
use crate::node::Node;

/// Feeds one PUT may set, at most.
const FEEDS_MAX: usize = 1_024;

/// One feed as the API spells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedSpec {
    pub prefix: String,
    pub stream: String,
}

/// One of this node's shard replicas: the feeds version it holds and the
/// events waiting in its outbox.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicaFeeds {
    pub shard: GroupId,
    pub version: u64,
    pub outbox_events: usize,
    pub leader: bool,
}

/// What `GET /changefeeds` answers.
#[derive(Debug, Clone, Serialize)]
pub struct FeedsView {
    /// The newest version a replica here holds (0: never set).
    pub version: u64,
    pub feeds: Vec<FeedSpec>,
    pub replicas: Vec<ReplicaFeeds>,
}

fn spec(feed: &Feed) -> FeedSpec {
    FeedSpec {
        prefix: String::from_utf8_lossy(&feed.prefix).into_owned(),
        stream: String::from_utf8_lossy(&feed.stream).into_owned(),
    }
}

/// Returns the feeds as this node sees them.
pub fn view(node: &Node) -> FeedsView {
    let newest = crate::feed_forward::newest_feeds(node).unwrap_or_default();
    let replicas = node
        .shards()
        .into_values()
        .map(|group| {
            let state = group.state();
            let state = state.read();
            ReplicaFeeds {
                shard: group.id(),
                version: state.app.feed.feeds.version,
                outbox_events: state.app.feed.outbox.len(),
                leader: group.is_leader(),
            }
        })
        .collect();
    FeedsView {
        version: newest.version,
        feeds: newest.feeds.iter().map(spec).collect(),
        replicas,
    }
}

pub(crate) async fn get_feeds(State(node): State<Arc<Node>>) -> Json<FeedsView> {
    Json(view(&node))
}

/// Returns the feeds' text form (`<prefix> <stream> ...`), or why `specs`
/// cannot be written so: an empty word or one with white space.
fn to_text(specs: &[FeedSpec]) -> Result<String, String> {
    if specs.len() > FEEDS_MAX {
        return Err(format!("at most {FEEDS_MAX} feeds"));
    }
    let mut words = Vec::with_capacity(specs.len() * 2);
    for word in specs.iter().flat_map(|spec| [&spec.prefix, &spec.stream]) {
        if word.is_empty() || word.chars().any(char::is_whitespace) {
            return Err(format!(
                "{word:?}: a prefix or a stream must be non-empty and without white space"
            ));
        }
        words.push(word.as_str());
    }
    Ok(words.join(" "))
}

/// Sets the feeds (an empty list removes them all); answers the feeds set
/// and their version.
pub(crate) async fn put_feeds(
    State(node): State<Arc<Node>>,
    Json(specs): Json<Vec<FeedSpec>>,
) -> Response {
    let text = match to_text(&specs) {
        Ok(text) => text,
        Err(reason) => return (StatusCode::BAD_REQUEST, reason).into_response(),
    };
    match crate::feed_forward::configure(&node, &text).await {
        Ok(feeds) => (StatusCode::OK, Json(set_view(&feeds))).into_response(),
        Err(error @ (ReplyError::TryAgain(_) | ReplyError::ClusterDown(_))) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{}; try again", error.render()),
        )
            .into_response(),
        Err(error) => (StatusCode::CONFLICT, error.render()).into_response(),
    }
}

/// What `PUT /changefeeds` answers: the feeds set and their version.
#[derive(Debug, Clone, Serialize)]
struct SetView {
    version: u64,
    feeds: Vec<FeedSpec>,
}

fn set_view(feeds: &Feeds) -> SetView {
    SetView {
        version: feeds.version,
        feeds: feeds.feeds.iter().map(spec).collect(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn spec(prefix: &str, stream: &str) -> FeedSpec {
        FeedSpec {
            prefix: prefix.into(),
            stream: stream.into(),
        }
    }

    #[test]
    fn feeds_become_the_config_text_and_parse_back() {
        let text = to_text(&[spec("orders:", "{feed}orders"), spec("users:", "u")]).unwrap();
        assert_eq!(text, "orders: {feed}orders users: u");
        let feeds = Feeds::parse(&text, 3).unwrap();
        assert_eq!(
            set_view(&feeds).feeds,
            vec![spec("orders:", "{feed}orders"), spec("users:", "u")]
        );
        assert_eq!(to_text(&[]).unwrap(), "");
    }

    #[test]
    fn words_the_text_form_cannot_carry_are_refused() {
        assert!(to_text(&[spec("", "s")]).is_err());
        assert!(to_text(&[spec("a b", "s")]).is_err());
        assert!(to_text(&[spec("a", "s\t")]).is_err());
        let many = vec![spec("a", "s"); FEEDS_MAX + 1];
        assert!(to_text(&many).is_err());
    }

    #[test]
    fn bytes_show_as_text() {
        let feed = Feed {
            prefix: Bytes::from_static(b"p:"),
            stream: Bytes::from_static(b"s"),
        };
        assert_eq!(super::spec(&feed), spec("p:", "s"));
    }
}
