//! How a list is stored in snapshots and log entries.

use std::fmt;

use bytes::Bytes;
use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ListValue;

/// How a list is stored in snapshots: its elements, then the sum of
/// their lengths (the shape the list has always been stored in; the sum
/// is recomputed on load, not trusted).
#[derive(Serialize)]
#[serde(rename = "ListValue")]
struct StoredList<'a> {
    items: StoredElements<'a>,
    payload_bytes: usize,
}

/// [`StoredList`] read back.
#[derive(Deserialize)]
#[serde(rename = "ListValue")]
struct StoredListOwned {
    items: StoredElementsOwned,
    #[allow(dead_code)]
    payload_bytes: usize,
}

struct StoredElements<'a>(&'a ListValue);

/// One element, stored as a byte string (as `Bytes` stores itself).
struct StoredElement<'a>(&'a [u8]);

impl Serialize for StoredElement<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

impl Serialize for StoredElements<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(StoredElement))
    }
}

impl Serialize for ListValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        StoredList {
            items: StoredElements(self),
            payload_bytes: self.iter().map(<[u8]>::len).sum(),
        }
        .serialize(serializer)
    }
}

/// The elements of a stored list, packed as they are read.
struct StoredElementsOwned(ListValue);

impl<'de> Deserialize<'de> for StoredElementsOwned {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ElementsVisitor;

        impl<'de> Visitor<'de> for ElementsVisitor {
            type Value = StoredElementsOwned;

            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a sequence of byte strings")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut list = ListValue::new();
                // Bounded by the input: each element consumes bytes.
                while let Some(element) = seq.next_element::<Bytes>()? {
                    list.push_back(&element);
                }
                Ok(StoredElementsOwned(list))
            }
        }

        deserializer.deserialize_seq(ElementsVisitor)
    }
}

impl<'de> Deserialize<'de> for ListValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        StoredListOwned::deserialize(deserializer).map(|stored| stored.items.0)
    }
}
