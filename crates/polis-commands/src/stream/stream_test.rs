use polis_resp::Reply;

use crate::test_support::*;

#[test]
fn placeholder() {
    let mut h = Harness::new();
    assert_eq!(h.run("xlen s"), int(0));
    let _ = Reply::Null;
}
