#![allow(clippy::unwrap_used)] // Tests fail loudly.

use super::*;

fn eventual(prefix: &str, replicas: u8, write: u8, read: u8) -> Namespace {
    Namespace {
        prefix: Bytes::copy_from_slice(prefix.as_bytes()),
        consistency: Consistency::Eventual,
        quorums: Some(Quorums {
            replicas,
            write,
            read,
        }),
    }
}

fn strong(prefix: &str) -> Namespace {
    Namespace {
        prefix: Bytes::copy_from_slice(prefix.as_bytes()),
        consistency: Consistency::Strong,
        quorums: None,
    }
}

fn prefix_of<'a>(namespaces: &'a Namespaces, key: &str) -> Option<&'a [u8]> {
    namespaces
        .lookup(key.as_bytes())
        .map(|namespace| namespace.prefix.as_ref())
}

#[test]
fn the_longest_prefix_wins_and_other_keys_are_strong() {
    let mut namespaces = Namespaces::default();
    namespaces.set(eventual("stock:", 3, 2, 2)).unwrap();
    namespaces.set(eventual("stock:hot:", 3, 1, 1)).unwrap();
    namespaces.set(strong("order:")).unwrap();
    assert_eq!(
        prefix_of(&namespaces, "stock:hot:42"),
        Some(&b"stock:hot:"[..])
    );
    assert_eq!(prefix_of(&namespaces, "stock:hou"), Some(&b"stock:"[..]));
    assert_eq!(prefix_of(&namespaces, "stock:"), Some(&b"stock:"[..]));
    assert_eq!(prefix_of(&namespaces, "stock"), None);
    assert_eq!(prefix_of(&namespaces, "order:1"), Some(&b"order:"[..]));
    assert_eq!(namespaces.consistency(b"cart:7"), Consistency::Strong);
    assert_eq!(namespaces.consistency(b"stock:1"), Consistency::Eventual);
    assert_eq!(namespaces.consistency(b"order:1"), Consistency::Strong);
    namespaces.remove(b"stock:hot:").unwrap();
    assert_eq!(prefix_of(&namespaces, "stock:hot:42"), Some(&b"stock:"[..]));
}

#[test]
fn lookup_agrees_with_trying_every_prefix() {
    // Prefixes and keys over a two-letter alphabet, so that many of them
    // nest and sit between one another in order.
    let words: Vec<String> = (1..=4)
        .flat_map(|len| {
            (0..1u32 << len).map(move |bits| {
                (0..len)
                    .map(|at| if bits >> at & 1 == 1 { 'b' } else { 'a' })
                    .collect()
            })
        })
        .collect();
    let mut namespaces = Namespaces::default();
    for word in words.iter().step_by(3) {
        namespaces.set(strong(word)).unwrap();
    }
    for key in &words {
        let expected = namespaces
            .iter()
            .filter(|namespace| key.as_bytes().starts_with(&namespace.prefix))
            .max_by_key(|namespace| namespace.prefix.len())
            .map(|namespace| namespace.prefix.as_ref());
        assert_eq!(prefix_of(&namespaces, key), expected, "key {key}");
    }
}

#[test]
fn bad_namespaces_are_refused_with_what_to_change() {
    let mut namespaces = Namespaces::default();
    assert_eq!(namespaces.set(strong("")), Err(NamespaceError::BadPrefix));
    let long = "x".repeat(NAMESPACE_PREFIX_LEN_MAX + 1);
    assert_eq!(
        namespaces.set(strong(&long)),
        Err(NamespaceError::BadPrefix)
    );
    let mut no_quorums = eventual("a:", 3, 2, 2);
    no_quorums.quorums = None;
    assert_eq!(
        namespaces.set(no_quorums),
        Err(NamespaceError::QuorumsMissing)
    );
    let mut strong_with_quorums = strong("b:");
    strong_with_quorums.quorums = Some(Quorums {
        replicas: 3,
        write: 2,
        read: 2,
    });
    assert_eq!(
        namespaces.set(strong_with_quorums),
        Err(NamespaceError::QuorumsOnStrong)
    );
    for (replicas, write, read) in [(3, 4, 2), (3, 0, 1), (3, 1, 4), (0, 0, 0), (8, 1, 1)] {
        let refused = namespaces
            .set(eventual("c:", replicas, write, read))
            .unwrap_err();
        assert!(
            refused.to_string().contains("1 <= write quorum"),
            "{refused}"
        );
    }
    assert!(namespaces.iter().next().is_none(), "nothing was set");
    namespaces.set(eventual("c:", 1, 1, 1)).unwrap();
    namespaces.set(eventual("c:", 7, 4, 4)).unwrap();
    assert_eq!(namespaces.iter().count(), 1, "replaced, not added");
}

#[test]
fn a_cluster_holds_a_bounded_number_of_namespaces() {
    let mut namespaces = Namespaces::default();
    for index in 0..NAMESPACES_MAX {
        namespaces.set(strong(&format!("ns{index}:"))).unwrap();
    }
    assert_eq!(
        namespaces.set(strong("one-more:")),
        Err(NamespaceError::TooMany)
    );
    // Replacing one is not adding one.
    namespaces.set(eventual("ns0:", 3, 2, 2)).unwrap();
}

#[test]
fn multi_key_commands_may_not_mix_consistencies() {
    let mut namespaces = Namespaces::default();
    namespaces.set(eventual("stock:", 3, 2, 2)).unwrap();
    let keys = |list: &[&'static str]| -> Vec<&'static [u8]> {
        list.iter().map(|key| key.as_bytes()).collect()
    };
    assert_eq!(
        namespaces.common_consistency(keys(&["stock:1", "stock:2"])),
        Some(Consistency::Eventual)
    );
    assert_eq!(
        namespaces.common_consistency(keys(&["order:1", "cart:2"])),
        Some(Consistency::Strong)
    );
    assert_eq!(
        namespaces.common_consistency(keys(&["stock:1", "order:1"])),
        None
    );
    assert_eq!(
        namespaces.common_consistency(keys(&[])),
        Some(Consistency::Strong)
    );
}

#[test]
fn consistency_names_round_trip() {
    for consistency in [Consistency::Strong, Consistency::Eventual] {
        assert_eq!(Consistency::parse(consistency.name()), Some(consistency));
    }
    assert_eq!(Consistency::parse("EVENTUAL"), Some(Consistency::Eventual));
    assert_eq!(Consistency::parse("causal"), None);
}
