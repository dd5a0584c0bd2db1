#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

use super::*;

/// Values 1 to 4 pushed and acknowledged, 5 unknown; 1 and 2 popped.
fn book() -> Book {
    Book {
        pushed: [1, 2, 3, 4].into(),
        maybe_pushed: [5].into(),
        popped: [(1, 1), (2, 1)].into(),
        unknown_pops: 0,
    }
}

#[test]
fn a_book_that_agrees_with_the_list_and_counter_passes() {
    assert_eq!(audit(&book(), &[3, 4], 4), Vec::<String>::new());
    // The unknown push applied: listed, and counted.
    assert_eq!(audit(&book(), &[3, 4, 5], 5), Vec::<String>::new());
}

#[test]
fn each_disagreement_is_reported() {
    let cases: Vec<(&str, Book, Vec<u64>, u64, &str)> = vec![
        (
            "popped twice",
            Book {
                popped: [(1, 2), (2, 1)].into(),
                ..book()
            },
            vec![3, 4],
            4,
            "popped 2 times",
        ),
        (
            "popped and listed",
            book(),
            vec![2, 3, 4],
            4,
            "still listed",
        ),
        (
            "popped, never pushed",
            Book {
                popped: [(1, 1), (2, 1), (9, 1)].into(),
                ..book()
            },
            vec![3, 4],
            4,
            "never pushed",
        ),
        (
            "listed, never pushed",
            book(),
            vec![3, 4, 9],
            4,
            "listed but was never pushed",
        ),
        ("lost", book(), vec![3], 4, "neither popped nor listed"),
        ("counter short", book(), vec![3, 4], 3, "the counter says 3"),
        ("counter long", book(), vec![3, 4], 6, "the counter says 6"),
        (
            "listed twice",
            book(),
            vec![3, 4, 4],
            4,
            "in the list twice",
        ),
    ];
    for (what, book, listed, counter, expected) in cases {
        let problems = audit(&book, &listed, counter);
        assert!(
            problems.iter().any(|problem| problem.contains(expected)),
            "{what}: expected a problem with {expected:?}, got {problems:?}"
        );
    }
}

#[test]
fn a_pop_of_unknown_outcome_may_have_taken_a_value() {
    let book = Book {
        unknown_pops: 1,
        ..book()
    };
    assert_eq!(audit(&book, &[3], 4), Vec::<String>::new());
    // Two missing values, one unknown pop: one is lost.
    let problems = audit(&book, &[], 4);
    assert!(problems
        .iter()
        .any(|problem| problem.contains("neither popped nor listed")));
}
