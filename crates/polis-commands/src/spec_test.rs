use bytes::Bytes;

use super::*;
use crate::test_support::args;

#[test]
fn lookup_is_case_insensitive() {
    assert_eq!(lookup(b"GET").map(|spec| spec.name), Some("get"));
    assert_eq!(
        lookup(b"hIncrByFloat").map(|spec| spec.name),
        Some("hincrbyfloat")
    );
    assert!(lookup(b"nosuchcommand").is_none());
    assert!(lookup(b"").is_none());
}

#[test]
fn table_matches_redis_declarations() {
    // (name, arity, first, last, step, write)
    let table: &[(&str, i32, i32, i32, i32, bool)] = &[
        ("get", 2, 1, 1, 1, false),
        ("set", -3, 1, 1, 1, true),
        ("mset", -3, 1, -1, 2, true),
        ("mget", -2, 1, -1, 1, false),
        ("del", -2, 1, -1, 1, true),
        ("rename", 3, 1, 2, 1, true),
        ("lcs", -3, 1, 2, 1, false),
        ("copy", -3, 1, 2, 1, true),
        ("hset", -4, 1, 1, 1, true),
        ("keys", 2, 0, 0, 0, false),
        ("scan", -2, 0, 0, 0, false),
        ("flushall", -1, 0, 0, 0, true),
        ("ping", -1, 0, 0, 0, false),
    ];
    for &(name, arity, first, last, step, write) in table {
        let spec = lookup(name.as_bytes()).expect(name);
        assert_eq!(
            (
                spec.arity,
                spec.first_key,
                spec.last_key,
                spec.step,
                is_write(spec)
            ),
            (arity, first, last, step, write),
            "{name}"
        );
    }
    assert!(is_node(lookup(b"ping").expect("ping")));
    assert!(!is_node(lookup(b"get").expect("get")));
}

#[test]
fn every_name_is_unique_and_lowercase() {
    let mut names: Vec<&str> = all_commands().iter().map(|spec| spec.name).collect();
    for name in &names {
        assert_eq!(*name, name.to_ascii_lowercase());
    }
    let count = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), count);
}

#[test]
fn every_data_command_parses_through_the_enum() {
    // A command of this crate must not fall through to "unknown command".
    for spec in all_commands().iter().filter(|spec| !is_node(spec)) {
        let mut request = vec![Bytes::from_static(spec.name.as_bytes())];
        if let Some(sub) = spec.subcommands.iter().find(|sub| !is_node(sub)) {
            let short = sub.name.rsplit('|').next().unwrap_or(sub.name);
            request.push(Bytes::copy_from_slice(short.as_bytes()));
        }
        while request.len() < spec.arity.unsigned_abs() as usize + 2 {
            request.push(Bytes::from_static(b"1"));
        }
        if let Err(error) = crate::parse(&request) {
            assert!(
                !error.render().contains("unknown command"),
                "{}: {}",
                spec.name,
                error.render()
            );
        }
    }
}

#[test]
fn arity_errors_name_the_command() {
    let table: &[(&str, Option<&str>)] = &[
        (
            "get",
            Some("ERR wrong number of arguments for 'get' command"),
        ),
        ("get a", None),
        (
            "get a b",
            Some("ERR wrong number of arguments for 'get' command"),
        ),
        (
            "mset a",
            Some("ERR wrong number of arguments for 'mset' command"),
        ),
        ("mset a b c d", None),
        (
            "object",
            Some("ERR wrong number of arguments for 'object' command"),
        ),
        (
            "object encoding",
            Some("ERR wrong number of arguments for 'object|encoding' command"),
        ),
        ("object encoding k", None),
        (
            "object nope k",
            Some("ERR unknown subcommand 'nope'. Try OBJECT HELP."),
        ),
        ("OBJECT help", None),
        // COMMAND is a container that also runs bare.
        ("command", None),
        (
            "command nope",
            Some("ERR unknown subcommand 'nope'. Try COMMAND HELP."),
        ),
        // Redis's latency-monitor suite checks this one.
        (
            "latency help xxx",
            Some("ERR wrong number of arguments for 'latency|help' command"),
        ),
        ("latency histogram", None),
        ("latency histogram set client|id", None),
        ("latency reset", None),
        (
            "latency history",
            Some("ERR wrong number of arguments for 'latency|history' command"),
        ),
        (
            "latency nope",
            Some("ERR unknown subcommand 'nope'. Try LATENCY HELP."),
        ),
        ("slowlog get 5", None),
        (
            "slowlog len 5",
            Some("ERR wrong number of arguments for 'slowlog|len' command"),
        ),
        ("monitor", None),
        (
            "monitor now",
            Some("ERR wrong number of arguments for 'monitor' command"),
        ),
    ];
    for (line, expected) in table {
        let request = args(line);
        let spec = lookup(&request[0]).expect("known");
        let got = check_arity(spec, &request)
            .err()
            .map(|error| error.render());
        assert_eq!(got.as_deref(), *expected, "{line}");
    }
}

#[test]
fn keys_follow_spec_positions() {
    let table: &[(&str, &[&str])] = &[
        ("get k", &["k"]),
        ("set k v ex 10", &["k"]),
        ("mset a 1 b 2", &["a", "b"]),
        ("mset a 1 b", &["a", "b"]),
        ("mget a b c", &["a", "b", "c"]),
        ("del a b", &["a", "b"]),
        ("rename a b", &["a", "b"]),
        ("lcs a b len", &["a", "b"]),
        ("hset h f v f2 v2", &["h"]),
        ("object encoding k", &["k"]),
        ("memory usage k samples 5", &["k"]),
        ("keys *", &[]),
        ("ping", &[]),
        ("get", &[]),
    ];
    for (line, expected) in table {
        let request = args(line);
        let spec = lookup(&request[0]).expect("known");
        let keys = command_keys(spec, &request);
        let expected: Vec<Bytes> = expected
            .iter()
            .map(|key| Bytes::from(key.to_string()))
            .collect();
        assert_eq!(keys, expected, "{line}");
    }
}

#[test]
fn command_info_flags_and_categories() {
    let get = lookup(b"get").expect("get");
    assert_eq!(flag_names(get), vec!["readonly", "fast"]);
    assert_eq!(acl_categories(get), vec!["@read", "@string", "@fast"]);
    let set = lookup(b"set").expect("set");
    assert_eq!(flag_names(set), vec!["write", "denyoom"]);
    assert_eq!(acl_categories(set), vec!["@write", "@string", "@slow"]);
    let flushall = lookup(b"flushall").expect("flushall");
    assert_eq!(
        acl_categories(flushall),
        vec!["@keyspace", "@write", "@slow", "@dangerous"]
    );
}

#[test]
fn introspection_commands_are_declared_as_redis_7() {
    // (name, arity, flags COMMAND INFO shows, ACL categories)
    let table: &[(&str, i32, &[&str], &[&str])] = &[
        (
            "monitor",
            1,
            &["admin", "noscript", "loading", "stale"],
            &["@admin", "@slow", "@dangerous"],
        ),
        (
            "latency|doctor",
            2,
            &["admin", "noscript", "loading", "stale"],
            &["@admin", "@slow", "@dangerous"],
        ),
        (
            "latency|graph",
            3,
            &["admin", "noscript", "loading", "stale"],
            &["@admin", "@slow", "@dangerous"],
        ),
        ("latency|help", 2, &["loading", "stale"], &["@slow"]),
        (
            "latency|histogram",
            -2,
            &["admin", "noscript", "loading", "stale"],
            &["@admin", "@slow", "@dangerous"],
        ),
        (
            "latency|history",
            3,
            &["admin", "noscript", "loading", "stale"],
            &["@admin", "@slow", "@dangerous"],
        ),
        (
            "latency|latest",
            2,
            &["admin", "noscript", "loading", "stale"],
            &["@admin", "@slow", "@dangerous"],
        ),
        (
            "latency|reset",
            -2,
            &["admin", "noscript", "loading", "stale"],
            &["@admin", "@slow", "@dangerous"],
        ),
        (
            "slowlog|get",
            -2,
            &["admin", "loading", "stale"],
            &["@admin", "@slow", "@dangerous"],
        ),
        ("slowlog|help", 2, &["loading", "stale"], &["@slow"]),
    ];
    for &(name, arity, flags, categories) in table {
        let (container, sub) = name.split_once('|').unwrap_or((name, ""));
        let top = lookup(container.as_bytes()).expect(container);
        let spec = if sub.is_empty() {
            top
        } else {
            top.subcommand(sub.as_bytes()).expect(name)
        };
        assert_eq!(spec.name, name);
        assert_eq!(spec.arity, arity, "{name}");
        assert_eq!(flag_names(spec), flags, "{name}");
        assert_eq!(acl_categories(spec), categories, "{name}");
        assert!(is_node(spec), "{name} is answered by the node");
    }
}

#[test]
fn unknown_commands_quote_their_arguments() {
    let error = crate::parse(&args("foobared a b")).expect_err("unknown");
    assert_eq!(
        error.render(),
        "ERR unknown command 'foobared', with args beginning with: 'a' 'b' "
    );
    let node = crate::parse(&args("ping")).expect_err("node command");
    assert!(node
        .render()
        .starts_with("ERR 'ping' is executed by the node"));
}

#[test]
fn read_path_refuses_writes_and_write_path_runs_reads() {
    let mut db = polis_store::Db::new();
    let now = 1_000;
    assert_eq!(
        crate::execute_write(&mut db, &args("set k v"), now),
        polis_resp::Reply::ok()
    );
    let refused = crate::execute_read(&db, &args("set k w"), now);
    assert!(matches!(refused, polis_resp::Reply::Error(_)));
    assert_eq!(
        crate::execute_read(&db, &args("get k"), now),
        polis_resp::Reply::bulk("v")
    );
    assert_eq!(
        crate::execute_write(&mut db, &args("get k"), now),
        polis_resp::Reply::bulk("v")
    );
    // A syntax error is caught by parse, before anything could be proposed.
    assert!(crate::parse(&args("set k v ex")).is_err());
    assert_eq!(
        crate::execute_read(&db, &args("get k"), now),
        polis_resp::Reply::bulk("v")
    );
}

#[test]
fn every_command_is_found_by_its_name_in_any_case() {
    for spec in all_commands() {
        let upper = spec.name.to_ascii_uppercase();
        assert!(
            std::ptr::eq(lookup(upper.as_bytes()).unwrap(), spec),
            "{}",
            spec.name
        );
        assert!(
            std::ptr::eq(lookup(spec.name.as_bytes()).unwrap(), spec),
            "{}",
            spec.name
        );
    }
    assert!(lookup(b"no-such-command").is_none());
    assert!(lookup(&[b'a'; 1000]).is_none());
}
