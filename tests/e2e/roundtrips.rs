//! A decision costs one store command: the token pair and the session in one MGET, counted
//! with Redis' own INFO commandstats. Audit events are written apart from
//! decisions, a batch at a time, by one script call.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::gate::fixture;
use crate::support::app::{Stack, StoreKind};

/// Calls per command, from INFO commandstats.
fn commandstats(s: &Stack) -> BTreeMap<String, u64> {
    let raw = s
        .redis
        .as_ref()
        .unwrap()
        .command(&["INFO", "commandstats"])
        .unwrap();
    raw.lines()
        .filter_map(|l| l.strip_prefix("cmdstat_"))
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let calls = rest
                .split(',')
                .find_map(|kv| kv.strip_prefix("calls="))?
                .parse()
                .ok()?;
            Some((name.to_owned(), calls))
        })
        .collect()
}

fn delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter_map(|(k, v)| {
            let d = v - before.get(k).copied().unwrap_or(0);
            (d > 0 && k != "info").then(|| (k.clone(), d))
        })
        .collect()
}

/// Read events in the audit log, once the writer has flushed `want` of them: the audit log
/// is written a batch at a time, after the decisions, so its commands must be done before the
/// next count starts. Asking costs `XRANGE` calls, which the counts leave out.
fn audited_reads(s: &Stack, want: usize) {
    crate::support::eventually("the audit writer to flush", Duration::from_secs(10), || {
        let events = s.admin("GET", "/v1/events?limit=1000", &[], b"").json();
        let reads = events["events"]
            .as_array()
            .map_or(0, |e| e.iter().filter(|e| e["kind"] == "read").count());
        (reads == want).then_some(())
    });
}

#[test]
fn a_decision_is_one_mget() {
    let s = Stack::start(StoreKind::Redis);
    let f = fixture(&s);
    // One read first, so that the reads' stream exists: its first batch also asks Redis for
    // the time and whether the key exists.
    assert_eq!(s.get(&f.alice_url, Some(&f.alice)).status, 200);
    audited_reads(&s, 1);
    let before = commandstats(&s);
    let n = 50;
    for _ in 0..n {
        assert_eq!(s.get(&f.alice_url, Some(&f.alice)).status, 200);
    }
    audited_reads(&s, 1 + n as usize);
    let reads = delta(&before, &commandstats(&s));
    assert_eq!(reads.get("mget").copied(), Some(n), "{reads:?}");
    // Nothing else on the decision path: no second lookup, no writes, except the audit log's
    // batches. Each is one script call, and inside it one look at the stream's last entry,
    // one XADD and one XTRIM (the stream holds only batches here), plus download counters.
    let calls = |name: &str| reads.get(name).copied().unwrap_or(0);
    let batches = calls("evalsha") + calls("eval");
    assert!(batches >= 1, "{reads:?}");
    for inner in ["xrevrange", "xadd", "xtrim"] {
        assert_eq!(calls(inner), batches, "{inner}: {reads:?}");
    }
    let audit = [
        "evalsha",
        "eval",
        "xrevrange",
        "xadd",
        "xtrim",
        "incrby",
        "xrange",
    ];
    let others: Vec<&String> = reads
        .keys()
        .filter(|k| *k != "mget" && !audit.contains(&k.as_str()))
        .collect();
    assert!(others.is_empty(), "{reads:?}");

    // Anonymous decisions too (with two keys: no session to look up).
    let before = commandstats(&s);
    for _ in 0..n {
        assert_eq!(s.get(&f.alice_url, None).status, 401);
    }
    audited_reads(&s, 1 + 2 * n as usize);
    let reads = delta(&before, &commandstats(&s));
    assert_eq!(reads.get("mget").copied(), Some(n), "{reads:?}");

    // Malformed paths never reach the store, not even the audit log's.
    let before = commandstats(&s);
    for _ in 0..n {
        assert_eq!(s.get("/media/not/a/valid/path", Some(&f.alice)).status, 403);
    }
    let reads = delta(&before, &commandstats(&s));
    assert!(reads.is_empty(), "{reads:?}");
}
