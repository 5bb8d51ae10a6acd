//! For any text, the escaped MATCH pattern selects on a real Redis exactly the
//! keys the literal suffix/prefix test selects.

use std::collections::BTreeSet;

use proptest::prelude::*;
use user_api::repositories::redis::{KeyScanner, Keys, RedisClient};

use crate::helpers::test_settings;

/// Names with glob characters, separators and non-ASCII letters.
fn name() -> impl Strategy<Value = String> {
    proptest::string::string_regex(r"[a-c1:*?\[\]\\^é-]{0,6}").unwrap()
}

/// Keys, and a needle that is often a real suffix or prefix of one of them.
fn case() -> impl Strategy<Value = (Vec<String>, String, bool)> {
    (
        prop::collection::vec(name(), 1..12),
        name(),
        any::<prop::sample::Index>(),
        0..4usize,
        any::<bool>(),
    )
        .prop_map(|(keys, random, pick, cut, suffix)| {
            let chars: Vec<char> = pick.get(&keys).chars().collect();
            let cut = cut.min(chars.len());
            let needle: String = match (random.len() % 2, suffix) {
                (0, true) => chars[chars.len() - cut..].iter().collect(),
                (0, false) => chars[..cut].iter().collect(),
                _ => random,
            };
            (keys, needle, suffix)
        })
        .prop_filter("eviction refuses empty values", |(_, needle, _)| {
            !needle.is_empty()
        })
}

#[test]
fn escaped_patterns_select_exactly_the_literal_matches() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let settings = test_settings();
    let client = runtime
        .block_on(RedisClient::connect(&settings.redis))
        .unwrap();
    let scanner = KeyScanner::new(client.clone());
    let redis = redis::Client::open(crate::helpers::test_redis_url()).unwrap();

    proptest!(ProptestConfig::with_cases(96), |((names, needle, suffix) in case())| {
        let mut connection = redis.get_connection().unwrap();
        let keys = Keys::new(&format!("{}{}:", settings.redis.key_prefix, uuid::Uuid::new_v4().simple()));
        let namespace = keys.cache_namespace();
        let full: BTreeSet<String> = names.iter().map(|name| format!("{namespace}{name}")).collect();
        let mut pipe = redis::pipe();
        for key in &full {
            pipe.cmd("SET").arg(key).arg(1).ignore();
        }
        // A key outside the namespace that a careless pattern would catch.
        pipe.cmd("SET").arg(format!("{}session:{needle}", keys.cache_namespace().trim_end_matches("cache:"))).arg(1).ignore();
        let _: () = pipe.query(&mut connection).unwrap();

        let pattern = if suffix { keys.cache_suffix_pattern(&needle) } else { keys.cache_prefix_pattern(&needle) };
        let mut found = BTreeSet::new();
        let mut cursor = Some(scanner.start());
        while let Some(at) = cursor {
            let page = runtime.block_on(scanner.page(at, &pattern, 100)).unwrap();
            found.extend(page.keys.into_iter().map(|key| String::from_utf8(key).unwrap()));
            cursor = page.next;
        }
        let expected: BTreeSet<String> = full
            .iter()
            .filter(|key| {
                let name = &key[namespace.len()..];
                if suffix { name.ends_with(&needle) } else { name.starts_with(&needle) }
            })
            .cloned()
            .collect();
        let all = crate::test_redis::scan_keys_blocking(&mut connection, &format!("{}*", keys.cache_namespace().trim_end_matches("cache:"))).unwrap();
        let _: () = redis::cmd("DEL").arg(&all).query(&mut connection).unwrap();
        prop_assert_eq!(found, expected, "pattern {}", pattern);
    });
}
