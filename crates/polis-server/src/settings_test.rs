use super::*;

#[test]
fn set_validates_and_aliases_share_a_value() {
    let settings = Settings::new(512 * 1024 * 1024, 1 << 30, 100);
    settings
        .set_all(&[("hash-max-ziplist-entries".into(), "7".into())])
        .unwrap();
    assert_eq!(settings.integer("hash-max-listpack-entries"), 7);
    assert!(settings
        .set_all(&[("maxclients".into(), "abc".into())])
        .is_err());
    assert!(settings
        .set_all(&[("no-such-thing".into(), "1".into())])
        .is_err());
    settings
        .set_all(&[("proto-max-bulk-len".into(), "2mb".into())])
        .unwrap();
    assert_eq!(settings.integer("proto-max-bulk-len"), 2 * 1024 * 1024);
    // All or none: a bad pair leaves the good one unapplied.
    let result = settings.set_all(&[("maxclients".into(), "5".into()), ("hz".into(), "0".into())]);
    assert!(result.is_err());
    assert_eq!(settings.integer("maxclients"), 100);
}

#[test]
fn output_buffer_limits_change_only_the_classes_named() {
    let settings = Settings::new(512 * 1024 * 1024, 1 << 30, 100);
    assert_eq!(
        settings.pubsub_output_limit(),
        crate::pubsub::OutputLimit::REDIS_DEFAULT
    );
    settings
        .set_all(&[(
            "client-output-buffer-limit".into(),
            "pubsub 1mb 512kb 5".into(),
        )])
        .unwrap();
    let limit = settings.pubsub_output_limit();
    assert_eq!(
        (limit.hard_bytes, limit.soft_bytes, limit.soft_seconds),
        (1024 * 1024, 512 * 1024, 5)
    );
    let value = settings.get_matching(|name| name == "client-output-buffer-limit");
    assert_eq!(
        value[0].1,
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 1048576 524288 5"
    );
    for bad in [
        "pubsub 1 2",
        "teachers 1 2 3",
        "pubsub x 2 3",
        "pubsub 1 2 -3",
    ] {
        assert!(
            settings
                .set_all(&[("client-output-buffer-limit".into(), bad.into())])
                .is_err(),
            "{bad}"
        );
    }
}
