//! Roll imports: chunks, row errors, idempotence, leases.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use turnout_domain::Username;

use super::{audit, demo_election, lease};
use crate::{ImportChunk, ImportJob, ImportState, MAX_PAGE, RollEntry, RowError, Store, StoreError};

pub async fn roll_imports_apply_chunks_keep_errors_and_are_idempotent(store: Arc<dyn Store>) {
    let e = demo_election(store.as_ref()).await;
    let now = Timestamp::now();
    let entries: Vec<RollEntry> = (0..1000u32)
        .map(|n| RollEntry {
            uid: Username::parse(&format!("student{n:05}")).unwrap(),
            email: None,
            name: Some(format!("Student {n}")),
            columns: Default::default(),
        })
        .collect();
    let chunk = ImportChunk {
        entries: entries.clone(),
        errors: vec![RowError { line: 7, reason: "bad uid".into() }],
        rows: 1001,
    };
    let mut ids = Vec::new();
    for round in 0..2 {
        let job = ImportJob::started(&format!("job{round}"), &e, "admin1", "roll.csv", 1001, now);
        let lease = lease("run", now + Duration::from_secs(30));
        store.create_import(&job, &lease, &audit("roll_import_started", &e), now).await.unwrap();
        assert_eq!(store.running_imports().await.unwrap().len(), 1);
        let after = store.import_chunk(&job.id, &lease, &chunk, now).await.unwrap();
        assert_eq!(after.rows_done, 1001);
        let done = store.finish_import(&job.id, "run", ImportState::Done, None, now).await.unwrap();
        assert_eq!(done.state, ImportState::Done);
        ids.push(done);
    }
    // The second run of the same rows changed nothing.
    assert_eq!((ids[0].added, ids[0].unchanged, ids[0].rejected), (1000, 0, 1));
    assert_eq!((ids[1].added, ids[1].updated, ids[1].unchanged), (0, 0, 1000));
    assert_eq!(store.roll_size(&e).await.unwrap(), 1000);
    assert!(store.running_imports().await.unwrap().is_empty());
    let errors = store.import_errors("job0", 0, 10).await.unwrap();
    assert_eq!(errors, [RowError { line: 7, reason: "bad uid".into() }]);
    // A finished job takes no more chunks, and cannot be claimed.
    let run = lease("run", now + Duration::from_secs(30));
    assert!(store.import_chunk("job0", &run, &chunk, now).await.is_err());
    assert!(store.claim_import("job0", &lease("later", now), now + Duration::from_secs(60)).await.unwrap().is_none());
    // The roll pages by uid.
    let first = store.list_roll(&e, None, 3).await.unwrap();
    assert_eq!(
        first.iter().map(|r| r.uid.as_str()).collect::<Vec<_>>(),
        ["student00000", "student00001", "student00002"]
    );
    let next = store.list_roll(&e, Some(&first[2].uid), 1).await.unwrap();
    assert_eq!(next[0].uid.as_str(), "student00003");
    assert_eq!(store.list_roll(&e, None, 100_000).await.unwrap().len(), MAX_PAGE as usize, "page size capped");
}

/// One run at a time writes to an import: another takes it over only once the lease has
/// passed, and from then on the old run's chunks and finish are refused, changing nothing.
pub async fn an_import_is_held_by_one_run_and_taken_over_only_after_its_lease(store: Arc<dyn Store>) {
    let e = demo_election(store.as_ref()).await;
    let t0 = Timestamp::now();
    let job = ImportJob::started("leased", &e, "admin1", "roll.csv", 4, t0);
    let chunk = |from: u32| ImportChunk {
        entries: (from..from + 2)
            .map(|n| RollEntry {
                uid: Username::parse(&format!("student{n:05}")).unwrap(),
                email: None,
                name: None,
                columns: Default::default(),
            })
            .collect(),
        errors: vec![],
        rows: 2,
    };
    let first = lease("first", t0 + Duration::from_secs(30));
    store.create_import(&job, &first, &audit("roll_import_started", &e), t0).await.unwrap();
    // Held: no one else may take it, however many try.
    for other in ["second", "third"] {
        let claimed = store.claim_import("leased", &lease(other, t0 + Duration::from_secs(60)), t0).await.unwrap();
        assert!(claimed.is_none(), "{other} took an import whose lease had not passed");
    }
    let t1 = t0 + Duration::from_secs(10);
    let renewed = lease("first", t1 + Duration::from_secs(30));
    assert_eq!(store.import_chunk("leased", &renewed, &chunk(1), t1).await.unwrap().rows_done, 2);
    // The chunk renewed the lease: past the first lease's end, it is still held.
    let t2 = t0 + Duration::from_secs(35);
    assert!(store.claim_import("leased", &lease("second", t2 + Duration::from_secs(30)), t2).await.unwrap().is_none());

    // The first run stops committing; once its lease has passed, exactly one run takes over.
    let t3 = t1 + Duration::from_secs(31);
    let second = lease("second", t3 + Duration::from_secs(30));
    let taken = store.claim_import("leased", &second, t3).await.unwrap().expect("an abandoned import is taken over");
    assert_eq!((taken.rows_done, taken.state), (2, ImportState::Running));
    assert!(store.claim_import("leased", &lease("third", t3 + Duration::from_secs(30)), t3).await.unwrap().is_none());

    // The old run wakes up: its chunk and its finish are refused and change nothing.
    let late = store.import_chunk("leased", &renewed, &chunk(3), t3).await;
    assert!(matches!(late, Err(StoreError::Conflict(_))), "{late:?}");
    let late = store.finish_import("leased", "first", ImportState::Failed, Some("stopped"), t3).await;
    assert!(matches!(late, Err(StoreError::Conflict(_))), "{late:?}");
    let now = store.import_job("leased").await.unwrap().unwrap();
    assert_eq!((now.rows_done, now.state), (2, ImportState::Running));
    assert_eq!(store.roll_size(&e).await.unwrap(), 2);

    // The new run finishes it; a finished import is no longer running or claimable.
    assert_eq!(store.import_chunk("leased", &second, &chunk(3), t3).await.unwrap().rows_done, 4);
    let done = store.finish_import("leased", "second", ImportState::Done, None, t3).await.unwrap();
    assert_eq!((done.rows_done, done.added, done.state), (4, 4, ImportState::Done));
    assert!(store.running_imports().await.unwrap().is_empty());
    let t4 = t3 + Duration::from_secs(600);
    assert!(store.claim_import("leased", &lease("fourth", t4), t4).await.unwrap().is_none());
}
