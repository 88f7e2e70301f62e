//! The audit stream on Redis: entries of one event, as mediagate wrote them before batches,
//! read in order before the batches written after them; the cap counted in events; writers
//! racing for ids.

use std::sync::Arc;

use mediagate::store::{Store, StoredEvent};

use mediagate::model::Event;

use crate::resp_lines;
use crate::suite::denied_read;

fn events(at: std::ops::Range<i64>) -> Vec<Event> {
    at.map(denied_read).collect()
}

/// Every event, page by page, following `next` as a client does.
async fn read_all(store: &dyn Store, page: usize) -> Vec<StoredEvent> {
    let (mut all, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let got = store.events(cursor.as_deref(), page).await.unwrap();
        assert!(got.len() <= page);
        let Some(last) = got.last() else { return all };
        cursor = Some(last.id.clone());
        all.extend(got);
    }
}

fn times(events: &[StoredEvent]) -> Vec<i64> {
    events.iter().map(|e| e.event.at_ms).collect()
}

fn assert_ids_increase(events: &[StoredEvent]) {
    let key = |e: &StoredEvent| {
        let (ms, seq) = e.id.split_once('-').unwrap();
        (ms.parse::<u64>().unwrap(), seq.parse::<u64>().unwrap())
    };
    for w in events.windows(2) {
        assert!(key(&w[0]) < key(&w[1]), "{} then {}", w[0].id, w[1].id);
    }
}

/// Appends an entry of one event as mediagate wrote them before batches; returns its id.
fn put_single(put: &dyn Fn(&[&str]) -> String, stream: &str, at: i64) -> String {
    let json = format!(r#"{{"t":{at},"k":"read","d":"deny"}}"#);
    resp_lines(&put(&["XADD", stream, "*", "e", &json])).remove(0)
}

/// `put` runs one command on the server; the stream is `{prefix}:events`.
pub async fn entries_of_one_event_come_first(
    store: Arc<dyn Store>,
    prefix: &str,
    put: &dyn Fn(&[&str]) -> String,
) {
    store.migrate().await.unwrap();
    let stream = format!("{prefix}:events");
    let old_ids: Vec<String> = (0..30).map(|at| put_single(put, &stream, at)).collect();
    store.append_events(&events(30..40), 1000).await.unwrap();
    store.append_events(&events(40..45), 1000).await.unwrap();

    for page in [1, 7, 100] {
        let all = read_all(store.as_ref(), page).await;
        assert_eq!(times(&all), (0..45).collect::<Vec<_>>(), "pages of {page}");
        assert_ids_increase(&all);
        let ids: Vec<&String> = all[..30].iter().map(|e| &e.id).collect();
        assert_eq!(
            ids,
            old_ids.iter().collect::<Vec<_>>(),
            "old entries keep their ids"
        );
    }
    // A cursor from before the batches still reads on from where it was.
    let after_old = store.events(Some(&old_ids[29]), 3).await.unwrap();
    assert_eq!(times(&after_old), [30, 31, 32]);

    // Emptied by hand after an id ahead of the clock: the next ids still come after every id
    // given out, never from the clock again.
    put(&[
        "XADD",
        &stream,
        "99999999999999-5",
        "e",
        r#"{"t":45,"k":"read","d":"deny"}"#,
    ]);
    put(&["XTRIM", &stream, "MAXLEN", "0"]);
    store.append_events(&events(46..48), 1000).await.unwrap();
    let after = read_all(store.as_ref(), 100).await;
    let ids: Vec<&str> = after.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["99999999999999-6", "99999999999999-7"]);
    assert_eq!(times(&after), [46, 47]);
}

/// The cap counts events, old entries of one event included; the oldest go first.
pub async fn the_cap_counts_events(
    store: Arc<dyn Store>,
    prefix: &str,
    put: &dyn Fn(&[&str]) -> String,
) {
    store.migrate().await.unwrap();
    let stream = format!("{prefix}:events");
    for at in 0..150 {
        put_single(put, &stream, at);
    }
    let mut end = 150;
    for _ in 0..10 {
        store
            .append_events(&events(end..end + 60), 100)
            .await
            .unwrap();
        end += 60;
        let kept = times(&read_all(store.as_ref(), 1000).await);
        // Redis trims whole nodes (`~`): at least the newest 100, never a gap.
        assert!(kept.len() >= 100, "{}", kept.len());
        assert_eq!(kept, (end - kept.len() as i64..end).collect::<Vec<_>>());
    }
    let kept = read_all(store.as_ref(), 1000).await.len();
    assert!(kept <= 100 + 2 * 60, "{kept} events kept for a cap of 100");

    // A rolling upgrade: an earlier mediagate appends entries of one event between batches.
    for _ in 0..10 {
        for _ in 0..2 {
            put_single(put, &stream, end);
            end += 1;
        }
        store
            .append_events(&events(end..end + 60), 100)
            .await
            .unwrap();
        end += 60;
        let kept = times(&read_all(store.as_ref(), 1000).await);
        assert!(
            (100..=100 + 2 * 62).contains(&kept.len()),
            "{} events kept",
            kept.len()
        );
        assert_eq!(kept, (end - kept.len() as i64..end).collect::<Vec<_>>());
    }
}

/// Two writers appending at once: every event once, every id its own, in order.
pub async fn racing_writers_get_ids_of_their_own(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    a.migrate().await.unwrap();
    let write = |store: Arc<dyn Store>, base: i64| async move {
        for i in 0..20 {
            let at = base + i * 5;
            store
                .append_events(&events(at..at + 5), 10_000)
                .await
                .unwrap();
        }
    };
    tokio::join!(write(a.clone(), 0), write(b, 1000));
    let all = read_all(a.as_ref(), 37).await;
    assert_ids_increase(&all);
    let mut at = times(&all);
    at.sort_unstable();
    let want: Vec<i64> = (0..100).chain(1000..1100).collect();
    assert_eq!(at, want);
}
