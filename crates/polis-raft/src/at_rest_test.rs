#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

use super::*;

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[test]
fn a_sealed_record_opens_under_its_key_only_and_hides_its_payload() {
    let dir = tempfile::tempdir().unwrap();
    let master = MasterKey::generate().unwrap();
    let cipher = open(dir.path(), Some(&master), true).unwrap();
    assert!(cipher.is_encrypted());
    let payload = b"the value nobody may read on disk";
    let record = cipher.sealed(b"key-1", payload);
    assert_eq!(record.len(), SEALED_HEADER_LEN + payload.len() + TAG_LEN);
    assert!(!contains(&record, payload));
    assert_eq!(&*cipher.open(b"key-1", &record).unwrap(), payload);
    assert_eq!(cipher.open(b"key-2", &record), Err(RecordError::Forged));
    // Two seals of one payload differ (fresh nonces).
    assert_ne!(record, cipher.sealed(b"key-1", payload));
}

#[test]
fn every_flipped_bit_of_a_sealed_record_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let cipher = open(dir.path(), Some(&MasterKey::generate().unwrap()), true).unwrap();
    let record = cipher.sealed(b"k", b"SET k v");
    for bit in 0..record.len() * 8 {
        let mut damaged = record.clone();
        damaged[bit / 8] ^= 1 << (bit % 8);
        assert!(cipher.open(b"k", &damaged).is_err(), "bit {bit}");
    }
    assert_eq!(
        cipher.open(b"k", &record[..SEALED_HEADER_LEN]),
        Err(RecordError::TooShort {
            len: SEALED_HEADER_LEN
        })
    );
}

#[test]
fn plain_and_sealed_records_do_not_mix() {
    let dir = tempfile::tempdir().unwrap();
    let sealed = open(dir.path(), Some(&MasterKey::generate().unwrap()), true).unwrap();
    let plain_record = Cipher::Plain.sealed(b"k", b"v");
    assert_eq!(&*Cipher::Plain.open(b"k", &plain_record).unwrap(), b"v");
    assert_eq!(
        sealed.open(b"k", &plain_record),
        Err(RecordError::Unencrypted)
    );
    assert_eq!(
        Cipher::Plain.open(b"k", &sealed.sealed(b"k", b"v")),
        Err(RecordError::Encrypted)
    );
}

#[test]
fn the_directory_and_the_key_must_match() {
    let dir = tempfile::tempdir().unwrap();
    let master = MasterKey::generate().unwrap();
    open(dir.path(), Some(&master), true).unwrap();

    let error = open(dir.path(), None, false).unwrap_err().to_string();
    assert!(error.contains("is encrypted"), "{error}");
    assert!(error.contains("--encryption-key-file"), "{error}");

    let wrong = MasterKey::generate().unwrap();
    let error = open(dir.path(), Some(&wrong), false)
        .unwrap_err()
        .to_string();
    assert!(error.contains(&wrong.fingerprint()), "{error}");
    assert!(error.contains(&master.fingerprint()), "{error}");

    let unencrypted = tempfile::tempdir().unwrap();
    std::fs::create_dir(unencrypted.path().join("log")).unwrap();
    let error = open(unencrypted.path(), Some(&master), false)
        .unwrap_err()
        .to_string();
    assert!(error.contains("created without encryption"), "{error}");
    assert!(matches!(
        open(unencrypted.path(), None, false).unwrap(),
        Cipher::Plain
    ));
}

#[test]
fn rotation_keeps_old_records_readable_and_seals_new_ones_with_a_new_data_key() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (
        MasterKey::generate().unwrap(),
        MasterKey::generate().unwrap(),
    );
    let before = open(dir.path(), Some(&old), true).unwrap();
    let old_record = before.sealed(b"k", b"written before");

    let rotation = rotate(dir.path(), &old, &new).unwrap();
    assert_eq!(rotation.data_keys, 2);
    assert_eq!(rotation.new_fingerprint, new.fingerprint());
    assert!(open(dir.path(), Some(&old), false).is_err());
    let after = open(dir.path(), Some(&new), false).unwrap();
    assert_eq!(&*after.open(b"k", &old_record).unwrap(), b"written before");
    let new_record = after.sealed(b"k", b"written after");
    assert_eq!(&new_record[1..5], &2u32.to_le_bytes());
    // The old data key cannot open what the new one sealed.
    assert_eq!(
        before.open(b"k", &new_record),
        Err(RecordError::UnknownDataKey { id: 2 })
    );
    assert!(rotate(dir.path(), &old, &new).is_err(), "old key is gone");
}

#[test]
fn keys_parse_from_hex_only() {
    let key = MasterKey::generate().unwrap();
    let parsed = MasterKey::from_hex(&format!("  {}\n", key.to_hex())).unwrap();
    assert_eq!(parsed.fingerprint(), key.fingerprint());
    assert!(MasterKey::from_hex("abc").is_err());
    assert!(MasterKey::from_hex(&"zz".repeat(32)).is_err());
    assert!(!format!("{key:?}").contains(&key.to_hex()));
}
