//! The conformance suite: the contract of `Store` (vexil-store's crate docs) as tests, written
//! against the trait alone so that every backend runs the same ones.
//!
//! A backend provides a [`Fixture`] — a fresh, empty database per test — and instantiates the
//! whole suite with `conformance_tests!(async_expression_making_a_fixture)` inside a module of
//! its own; the expression gives an `Option`, `None` when the backend cannot be tested here
//! (its server is not running), and then each test returns at once, the expression having
//! said why. A test added here is added to every backend by adding its name to the macro.
//!
//! Timestamps a test chooses (key creation times) are whole seconds, so that a backend storing
//! microseconds (PostgreSQL) round-trips them too.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use jiff::Timestamp;
use serde_json::{Value, json};
use vexil_store::{
    ApiKey, AuditEvent, AuditQuery, Change, Commit, Committed, DynStore, Expected, FlagVersion,
    KeyKind, Snapshot, StoreError,
};

/// A fresh, empty database for one test.
#[async_trait]
pub trait Fixture: Send + Sync {
    /// Opens a store on this fixture's database. Calling it again opens the same database anew,
    /// as a restarted server would.
    async fn open(&self) -> DynStore;
}

/// Instantiates every conformance test as a `#[tokio::test]` for one backend. `$fixture` is an
/// expression whose `.await` gives a fresh [`Fixture`], or `None` to skip the test.
macro_rules! conformance_tests {
    ($fixture:expr) => {
        conformance_tests!(@store $fixture;
            an_empty_store_is_at_revision_zero,
            flags_are_created_updated_and_deleted,
            recreating_a_deleted_flag_continues_its_numbering,
            segments_are_versioned_like_flags,
            flags_and_segments_are_ordered_by_key,
            one_commit_may_hold_many_changes,
            failed_commits_write_nothing,
            a_stale_base_revision_is_refused,
            every_commit_has_exactly_one_audit_event,
            the_audit_log_filters_and_orders,
            the_audit_log_limits_its_answers,
            environments_keep_their_order,
            keys_are_created_listed_and_revoked,
            concurrent_writers_never_lose_an_update,
            a_large_definition_round_trips,
            definitions_keep_their_key_order,
            the_revision_follows_commits,
        );
        conformance_tests!(@fixture $fixture;
            reopening_keeps_everything,
            stores_sharing_a_database_see_each_others_commits,
        );
    };
    (@store $fixture:expr; $($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            let Some(fixture) = $fixture.await else { return };
            let store = $crate::conformance::Fixture::open(&fixture).await;
            $crate::conformance::$name(store).await;
        }
    )*};
    (@fixture $fixture:expr; $($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            let Some(fixture) = $fixture.await else { return };
            $crate::conformance::$name(&fixture).await;
        }
    )*};
}

// ---------------------------------------------------------------------------------------------
// The tests.

pub async fn an_empty_store_is_at_revision_zero(store: DynStore) {
    store.ping().await.unwrap();
    assert_eq!(store.snapshot().await.unwrap(), Snapshot::default());
    assert_eq!(store.flag_history("anything").await.unwrap(), []);
    assert_eq!(store.audit(&AuditQuery::default()).await.unwrap(), []);
    assert_eq!(store.keys().await.unwrap(), []);
}

pub async fn flags_are_created_updated_and_deleted(store: DynStore) {
    let v1 = json!({"description": "first", "rollout": 10});
    let v2 = json!({"description": "second", "rollout": 20});

    let created = store
        .commit(by(
            "alice",
            0,
            vec![put_flag("checkout", &v1, Expected::Absent)],
        ))
        .await
        .unwrap();
    assert_eq!(
        (created.revision, created.versions.as_slice()),
        (1, &[1][..])
    );
    let snapshot = store.snapshot().await.unwrap();
    assert_eq!(snapshot.revision, 1);
    assert_eq!(snapshot.flags.len(), 1);
    let record = &snapshot.flags[0];
    assert_eq!(
        (record.key.as_str(), record.version, &record.definition),
        ("checkout", 1, &v1)
    );
    assert_eq!(record.updated_at, created.at);
    assert_eq!(record.updated_by, "alice");

    let updated = store
        .commit(by(
            "bob",
            1,
            vec![put_flag("checkout", &v2, Expected::Version(1))],
        ))
        .await
        .unwrap();
    assert_eq!(
        (updated.revision, updated.versions.as_slice()),
        (2, &[2][..])
    );
    let snapshot = store.snapshot().await.unwrap();
    let record = &snapshot.flags[0];
    assert_eq!((record.version, &record.definition), (2, &v2));
    assert_eq!(
        (record.updated_at, record.updated_by.as_str()),
        (updated.at, "bob")
    );

    let deleted = store
        .commit(by(
            "carol",
            2,
            vec![delete_flag("checkout", Expected::Version(2))],
        ))
        .await
        .unwrap();
    assert_eq!(
        (deleted.revision, deleted.versions.as_slice()),
        (3, &[3][..])
    );
    let snapshot = store.snapshot().await.unwrap();
    assert_eq!(snapshot.revision, 3);
    assert_eq!(snapshot.flags, []);

    let history = store.flag_history("checkout").await.unwrap();
    assert_eq!(
        history,
        [
            flag_version("checkout", 1, Some(&v1), &created, "alice"),
            flag_version("checkout", 2, Some(&v2), &updated, "bob"),
            flag_version("checkout", 3, None, &deleted, "carol"),
        ]
    );
    assert_eq!(store.flag_history("other").await.unwrap(), []);
}

pub async fn recreating_a_deleted_flag_continues_its_numbering(store: DynStore) {
    let first = json!({"description": "first life"});
    let second = json!({"description": "second life"});
    commit_ok(&store, vec![put_flag("phoenix", &first, Expected::Absent)]).await;
    commit_ok(&store, vec![delete_flag("phoenix", Expected::Any)]).await;

    // Deleted means absent: `Absent` holds, and the new version follows the deletion's.
    let reborn = commit_ok(&store, vec![put_flag("phoenix", &second, Expected::Absent)]).await;
    assert_eq!(reborn.versions, [3]);
    let snapshot = store.snapshot().await.unwrap();
    assert_eq!(snapshot.flags.len(), 1);
    assert_eq!(snapshot.flags[0].version, 3);
    assert_eq!(snapshot.flags[0].definition, second);

    let updated = commit_ok(
        &store,
        vec![put_flag("phoenix", &first, Expected::Version(3))],
    )
    .await;
    assert_eq!(updated.versions, [4]);

    let history = store.flag_history("phoenix").await.unwrap();
    let versions: Vec<(u64, bool, u64)> = history
        .iter()
        .map(|v| (v.version, v.definition.is_some(), v.revision))
        .collect();
    assert_eq!(
        versions,
        [(1, true, 1), (2, false, 2), (3, true, 3), (4, true, 4)]
    );
}

pub async fn segments_are_versioned_like_flags(store: DynStore) {
    let internal = json!({"include": ["user-1"]});
    let staff = json!({"include": ["user-1", "user-2"]});

    let created = commit_ok(
        &store,
        vec![put_segment("internal", &internal, Expected::Absent)],
    )
    .await;
    assert_eq!(created.versions, [1]);
    let updated = commit_ok(
        &store,
        vec![put_segment("internal", &staff, Expected::Version(1))],
    )
    .await;
    assert_eq!(updated.versions, [2]);
    let snapshot = store.snapshot().await.unwrap();
    assert_eq!(snapshot.flags, []);
    assert_eq!(snapshot.segments.len(), 1);
    let record = &snapshot.segments[0];
    assert_eq!(
        (record.key.as_str(), record.version, &record.definition),
        ("internal", 2, &staff)
    );
    assert_eq!(
        (record.updated_at, record.updated_by.as_str()),
        (updated.at, "alice")
    );

    let deleted = commit_ok(
        &store,
        vec![delete_segment("internal", Expected::Version(2))],
    )
    .await;
    assert_eq!(deleted.versions, [3]);
    assert_eq!(store.snapshot().await.unwrap().segments, []);
    let recreated = commit_ok(
        &store,
        vec![put_segment("internal", &internal, Expected::Absent)],
    )
    .await;
    assert_eq!(recreated.versions, [4]);

    // A flag of the same name is another thing, with its own versions and history.
    let flag = commit_ok(
        &store,
        vec![put_flag("internal", &json!(true), Expected::Absent)],
    )
    .await;
    assert_eq!(flag.versions, [1]);
    assert_eq!(store.flag_history("internal").await.unwrap().len(), 1);
    let snapshot = store.snapshot().await.unwrap();
    assert_eq!(snapshot.revision, 5);
    assert_eq!(
        (snapshot.flags[0].version, snapshot.segments[0].version),
        (1, 4)
    );
}

pub async fn flags_and_segments_are_ordered_by_key(store: DynStore) {
    let keys = ["m", "b", "z", "a.b", "a-c", "a_c", "A", "0"];
    for key in keys {
        commit_ok(
            &store,
            vec![
                put_flag(key, &json!(true), Expected::Absent),
                put_segment(key, &json!({"include": [key]}), Expected::Absent),
            ],
        )
        .await;
    }
    let mut sorted: Vec<&str> = keys.to_vec();
    sorted.sort_unstable();
    let snapshot = store.snapshot().await.unwrap();
    let flags: Vec<&str> = snapshot.flags.iter().map(|r| r.key.as_str()).collect();
    let segments: Vec<&str> = snapshot.segments.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(flags, sorted);
    assert_eq!(segments, sorted);
}

pub async fn one_commit_may_hold_many_changes(store: DynStore) {
    let key = api_key("k1", KeyKind::Server, Some("qa"), "hash-1");
    let committed = commit_ok(
        &store,
        vec![
            add_environment("qa"),
            put_flag("a", &json!({"rollout": 1}), Expected::Absent),
            put_flag("b", &json!(true), Expected::Any),
            put_segment("s", &json!({"include": []}), Expected::Absent),
            // A later change sees the earlier ones: `a` is now at version 1.
            put_flag("a", &json!({"rollout": 2}), Expected::Version(1)),
            Change::CreateKey(key.clone()),
            delete_flag("b", Expected::Version(1)),
        ],
    )
    .await;
    assert_eq!(committed.revision, 1);
    assert_eq!(committed.versions, [0, 1, 1, 1, 2, 0, 2]);

    let snapshot = store.snapshot().await.unwrap();
    assert_eq!(snapshot.revision, 1);
    assert_eq!(snapshot.environments, ["qa"]);
    assert_eq!(snapshot.flags.len(), 1);
    assert_eq!(
        (snapshot.flags[0].version, &snapshot.flags[0].definition),
        (2, &json!({"rollout": 2}))
    );
    assert_eq!(snapshot.segments.len(), 1);
    assert_eq!(store.keys().await.unwrap(), [key]);

    // Every version the commit wrote carries its revision; the commit is one audit event.
    let history_a = store.flag_history("a").await.unwrap();
    let history_b = store.flag_history("b").await.unwrap();
    assert_eq!(history_a.len(), 2);
    assert_eq!(history_b.len(), 2);
    assert!(history_a.iter().chain(&history_b).all(|v| v.revision == 1));
    assert_eq!(store.audit(&AuditQuery::default()).await.unwrap().len(), 1);
}

pub async fn failed_commits_write_nothing(store: DynStore) {
    // The state every case starts from.
    commit_ok(
        &store,
        vec![
            add_environment("production"),
            put_flag("live", &json!(true), Expected::Absent),
            put_flag("gone", &json!(true), Expected::Absent),
            put_segment("live", &json!({"include": []}), Expected::Absent),
            put_segment("gone", &json!({"include": []}), Expected::Absent),
            Change::CreateKey(api_key("k1", KeyKind::Admin, None, "hash-1")),
            Change::CreateKey(api_key("k2", KeyKind::Client, Some("production"), "hash-2")),
        ],
    )
    .await;
    commit_ok(
        &store,
        vec![
            delete_flag("gone", Expected::Version(1)),
            delete_segment("gone", Expected::Version(1)),
            revoke_key("k2"),
        ],
    )
    .await;

    let t = json!({"description": "change"});
    #[rustfmt::skip]
    let cases: Vec<(&str, Vec<Change>, &str)> = vec![
        // Flags.
        ("create a live flag", vec![put_flag("live", &t, Expected::Absent)], "Conflict(flag:live, Some(1))"),
        ("update from an old version", vec![put_flag("live", &t, Expected::Version(2))], "Conflict(flag:live, Some(1))"),
        ("update a missing flag", vec![put_flag("new", &t, Expected::Version(1))], "Conflict(flag:new, None)"),
        ("update a deleted flag", vec![put_flag("gone", &t, Expected::Version(1))], "Conflict(flag:gone, None)"),
        ("delete a missing flag", vec![delete_flag("new", Expected::Any)], "NotFound(flag:new)"),
        ("delete a missing flag, expected absent", vec![delete_flag("new", Expected::Absent)], "NotFound(flag:new)"),
        ("delete a deleted flag", vec![delete_flag("gone", Expected::Any)], "NotFound(flag:gone)"),
        ("delete a missing flag at a version", vec![delete_flag("new", Expected::Version(1))], "Conflict(flag:new, None)"),
        ("delete a live flag, expected absent", vec![delete_flag("live", Expected::Absent)], "Conflict(flag:live, Some(1))"),
        ("delete a live flag at another version", vec![delete_flag("live", Expected::Version(7))], "Conflict(flag:live, Some(1))"),
        // Segments.
        ("create a live segment", vec![put_segment("live", &t, Expected::Absent)], "Conflict(segment:live, Some(1))"),
        ("update a segment from an old version", vec![put_segment("live", &t, Expected::Version(0))], "Conflict(segment:live, Some(1))"),
        ("update a deleted segment", vec![put_segment("gone", &t, Expected::Version(1))], "Conflict(segment:gone, None)"),
        ("delete a missing segment", vec![delete_segment("new", Expected::Any)], "NotFound(segment:new)"),
        ("delete a deleted segment", vec![delete_segment("gone", Expected::Any)], "NotFound(segment:gone)"),
        ("delete a missing segment at a version", vec![delete_segment("new", Expected::Version(1))], "Conflict(segment:new, None)"),
        // Environments and keys.
        ("add an existing environment", vec![add_environment("production")], "AlreadyExists(environment:production)"),
        ("add an environment twice", vec![add_environment("qa"), add_environment("qa")], "AlreadyExists(environment:qa)"),
        ("reuse a key id", vec![Change::CreateKey(api_key("k1", KeyKind::Admin, None, "hash-new"))], "AlreadyExists(key:k1)"),
        ("reuse a secret", vec![Change::CreateKey(api_key("k3", KeyKind::Admin, None, "hash-1"))], "AlreadyExists(key:k1)"),
        ("reuse a revoked key's secret", vec![Change::CreateKey(api_key("k3", KeyKind::Admin, None, "hash-2"))], "AlreadyExists(key:k2)"),
        ("revoke an unknown key", vec![revoke_key("k9")], "NotFound(key:k9)"),
        ("revoke a revoked key", vec![revoke_key("k2")], "NotFound(key:k2)"),
        // Whatever came before the failing change in the commit is not written either.
        (
            "fail after successful changes",
            vec![
                put_flag("new", &t, Expected::Absent),
                put_flag("live", &t, Expected::Version(1)),
                delete_flag("live", Expected::Version(2)),
                put_segment("new", &t, Expected::Any),
                add_environment("qa"),
                Change::CreateKey(api_key("k3", KeyKind::Admin, None, "hash-3")),
                revoke_key("k1"),
                put_flag("new", &t, Expected::Absent),
            ],
            "Conflict(flag:new, Some(1))",
        ),
    ];

    let before = State::read(&store, &["live", "gone", "new"]).await;
    assert_eq!(before.snapshot.revision, 2);
    let mut failures = Vec::new();
    for (name, changes, expected) in cases {
        let outcome = describe(store.commit(by("alice", 2, changes)).await);
        if outcome != expected {
            failures.push(format!("{name}: expected {expected}, got {outcome}"));
        }
        let after = State::read(&store, &["live", "gone", "new"]).await;
        if after != before {
            failures.push(format!("{name}: the failed commit changed the store"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // The revision did not move: a commit on the same base succeeds.
    let next = commit_ok(&store, vec![put_flag("new", &t, Expected::Absent)]).await;
    assert_eq!((next.revision, next.versions.as_slice()), (3, &[1][..]));
}

pub async fn a_stale_base_revision_is_refused(store: DynStore) {
    commit_ok(&store, vec![put_flag("a", &json!(true), Expected::Absent)]).await;
    commit_ok(
        &store,
        vec![put_flag("a", &json!(false), Expected::Version(1))],
    )
    .await;
    let before = State::read(&store, &["a", "b"]).await;

    let cases: Vec<(u64, Vec<Change>)> = vec![
        (0, vec![put_flag("b", &json!(true), Expected::Any)]),
        (1, vec![put_flag("b", &json!(true), Expected::Absent)]),
        (3, vec![put_flag("b", &json!(true), Expected::Any)]),
        // Staleness is checked first: it says "reload", which also explains the conflict.
        (1, vec![put_flag("a", &json!(true), Expected::Version(1))]),
        (0, vec![add_environment("qa")]),
        (0, vec![]),
    ];
    for (base, changes) in cases {
        let outcome = describe(store.commit(by("alice", base, changes)).await);
        assert_eq!(outcome, "Stale(2)", "base revision {base}");
        assert_eq!(State::read(&store, &["a", "b"]).await, before);
    }
    let next = store
        .commit(by(
            "alice",
            2,
            vec![put_flag("b", &json!(true), Expected::Absent)],
        ))
        .await
        .unwrap();
    assert_eq!(next.revision, 3);
}

pub async fn every_commit_has_exactly_one_audit_event(store: DynStore) {
    let definition = json!({"description": "New checkout", "rollout": 5});
    let mut commits = vec![
        Commit {
            base_revision: 0,
            actor: "alice".to_owned(),
            action: "flag.create".to_owned(),
            target: "flag:checkout".to_owned(),
            comment: Some("ticket PAY-1234".to_owned()),
            before: None,
            after: Some(definition.clone()),
            changes: vec![put_flag("checkout", &definition, Expected::Absent)],
        },
        Commit {
            base_revision: 1,
            actor: "bob".to_owned(),
            action: "flag.disable".to_owned(),
            target: "flag:checkout".to_owned(),
            comment: None,
            before: Some(definition.clone()),
            after: Some(json!({"enabled": false})),
            changes: vec![put_flag(
                "checkout",
                &json!({"enabled": false}),
                Expected::Version(1),
            )],
        },
        Commit {
            base_revision: 2,
            actor: "carol".to_owned(),
            action: "import".to_owned(),
            target: "config".to_owned(),
            comment: Some("several changes, one event".to_owned()),
            before: Some(json!({"flags": {"checkout": {"enabled": false}}})),
            after: Some(json!({"flags": {}})),
            changes: vec![
                delete_flag("checkout", Expected::Any),
                put_segment("s", &json!({}), Expected::Absent),
                add_environment("qa"),
            ],
        },
        Commit {
            base_revision: 3,
            actor: "dave".to_owned(),
            action: "environment.create".to_owned(),
            target: "environment:prod".to_owned(),
            comment: None,
            before: None,
            after: None,
            changes: vec![add_environment("prod")],
        },
    ];

    let mut committed = Vec::new();
    for commit in &commits {
        committed.push(store.commit(commit.clone()).await.unwrap());
    }
    // Failed commits leave no event.
    let failed = by(
        "eve",
        4,
        vec![put_flag("s", &json!(1), Expected::Version(9))],
    );
    assert!(store.commit(failed).await.is_err());

    let mut events = store.audit(&AuditQuery::default()).await.unwrap();
    assert_eq!(events.len(), commits.len());
    events.reverse();
    let ids: Vec<u64> = events.iter().map(|e| e.id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");
    for ((event, commit), committed) in events.iter().zip(commits.drain(..)).zip(&committed) {
        let expected = AuditEvent {
            id: event.id,
            revision: committed.revision,
            at: committed.at,
            actor: commit.actor,
            action: commit.action,
            target: commit.target,
            before: commit.before,
            after: commit.after,
            comment: commit.comment,
        };
        assert_eq!(*event, expected);
    }
}

pub async fn the_audit_log_filters_and_orders(store: DynStore) {
    let targets = [
        "flag:a",
        "flag:ab",
        "segment:a",
        "flag:a",
        "config",
        "flag:b",
        "flag:a",
    ];
    let mut committed = Vec::new();
    for (i, target) in targets.iter().enumerate() {
        let commit = Commit {
            target: (*target).to_owned(),
            ..by("alice", as_u64(i), vec![])
        };
        committed.push(store.commit(commit).await.unwrap());
    }

    // Newest first.
    let all = store.audit(&AuditQuery::default()).await.unwrap();
    let revisions: Vec<u64> = all.iter().map(|e| e.revision).collect();
    assert_eq!(revisions, [7, 6, 5, 4, 3, 2, 1]);

    // `flag` matches the target exactly.
    let query = AuditQuery {
        flag: Some("a".to_owned()),
        ..AuditQuery::default()
    };
    let revisions: Vec<u64> = store
        .audit(&query)
        .await
        .unwrap()
        .iter()
        .map(|e| e.revision)
        .collect();
    assert_eq!(revisions, [7, 4, 1]);

    // `limit` keeps the newest, also with a filter.
    let query = AuditQuery {
        flag: Some("a".to_owned()),
        limit: 2,
        ..AuditQuery::default()
    };
    let revisions: Vec<u64> = store
        .audit(&query)
        .await
        .unwrap()
        .iter()
        .map(|e| e.revision)
        .collect();
    assert_eq!(revisions, [7, 4]);
    let query = AuditQuery {
        limit: 3,
        ..AuditQuery::default()
    };
    assert_eq!(store.audit(&query).await.unwrap(), all[..3]);

    // `since` is inclusive. Commit times need not be distinct, so compare with the full log.
    for committed in &committed {
        let since = committed.at;
        let query = AuditQuery {
            since: Some(since),
            ..AuditQuery::default()
        };
        let expected: Vec<AuditEvent> = all.iter().filter(|e| e.at >= since).cloned().collect();
        let got = store.audit(&query).await.unwrap();
        assert!(got.iter().any(|e| e.revision == committed.revision));
        assert_eq!(got, expected);
    }
    let later: Timestamp = "9999-01-01T00:00:00Z".parse().unwrap();
    let query = AuditQuery {
        since: Some(later),
        ..AuditQuery::default()
    };
    assert_eq!(store.audit(&query).await.unwrap(), []);
    let earlier: Timestamp = "1970-01-01T00:00:00Z".parse().unwrap();
    let query = AuditQuery {
        since: Some(earlier),
        flag: Some("b".to_owned()),
        limit: 10,
    };
    let revisions: Vec<u64> = store
        .audit(&query)
        .await
        .unwrap()
        .iter()
        .map(|e| e.revision)
        .collect();
    assert_eq!(revisions, [6]);
}

pub async fn the_audit_log_limits_its_answers(store: DynStore) {
    // A limit of 0 means the default, 100.
    for revision in 0..105 {
        store.commit(by("alice", revision, vec![])).await.unwrap();
    }
    let newest = store.audit(&AuditQuery::default()).await.unwrap();
    assert_eq!(newest.len(), 100);
    assert_eq!(newest[0].revision, 105);
    assert_eq!(newest[99].revision, 6);
    let query = AuditQuery {
        limit: 1000,
        ..AuditQuery::default()
    };
    assert_eq!(store.audit(&query).await.unwrap().len(), 105);
    let query = AuditQuery {
        limit: usize::MAX,
        ..AuditQuery::default()
    };
    assert_eq!(store.audit(&query).await.unwrap().len(), 105);
}

pub async fn environments_keep_their_order(store: DynStore) {
    commit_ok(&store, vec![add_environment("zeta")]).await;
    commit_ok(
        &store,
        vec![add_environment("alpha"), add_environment("mid")],
    )
    .await;
    let outcome = describe(
        store
            .commit(by("alice", 2, vec![add_environment("alpha")]))
            .await,
    );
    assert_eq!(outcome, "AlreadyExists(environment:alpha)");
    commit_ok(&store, vec![add_environment("beta")]).await;
    let snapshot = store.snapshot().await.unwrap();
    assert_eq!(snapshot.environments, ["zeta", "alpha", "mid", "beta"]);
    assert_eq!(snapshot.revision, 3);
}

pub async fn keys_are_created_listed_and_revoked(store: DynStore) {
    // Ids in another order than creation, to see that the listing follows creation.
    let admin = api_key("k3-admin", KeyKind::Admin, None, "aa11");
    let server = api_key("k1-server", KeyKind::Server, Some("production"), "bb22");
    let client = api_key("k2-client", KeyKind::Client, Some("staging"), "cc33");
    let created = commit_ok(&store, vec![Change::CreateKey(admin.clone())]).await;
    assert_eq!(created.versions, [0]);
    commit_ok(
        &store,
        vec![
            Change::CreateKey(server.clone()),
            Change::CreateKey(client.clone()),
        ],
    )
    .await;
    assert_eq!(
        store.keys().await.unwrap(),
        [admin.clone(), server.clone(), client.clone()]
    );

    let revoked = commit_ok(&store, vec![revoke_key("k1-server")]).await;
    assert_eq!(revoked.versions, [0]);
    let revoked_server = ApiKey {
        revoked_at: Some(revoked.at),
        ..server
    };
    // Revoked keys stay listed.
    assert_eq!(store.keys().await.unwrap(), [admin, revoked_server, client]);
    let outcome = describe(
        store
            .commit(by("alice", 3, vec![revoke_key("k1-server")]))
            .await,
    );
    assert_eq!(outcome, "NotFound(key:k1-server)");
    // Keys are not versioned things: the snapshot does not show them, but the revision moved.
    let snapshot = store.snapshot().await.unwrap();
    assert_eq!(snapshot.revision, 3);
    assert_eq!(snapshot.flags, []);
}

pub async fn concurrent_writers_never_lose_an_update(store: DynStore) {
    const WRITERS: usize = 16;
    const ATTEMPTS: usize = 8;
    commit_ok(
        &store,
        vec![put_flag("counter", &json!({"read": 0}), Expected::Absent)],
    )
    .await;

    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for attempt in 0..ATTEMPTS {
                let seen = store.snapshot().await.unwrap();
                let version = seen.flags[0].version;
                tokio::task::yield_now().await;
                // Half the writers compute against the revision they saw, so they lose with
                // `Stale`; the other half read a fresh revision just before committing, so
                // only the flag's version can tell them they lost (`Conflict`).
                let base = if writer % 2 == 0 {
                    seen.revision
                } else {
                    store.snapshot().await.unwrap().revision
                };
                let definition = json!({"read": version, "writer": writer, "attempt": attempt});
                let change = put_flag("counter", &definition, Expected::Version(version));
                let result = store.commit(by("alice", base, vec![change])).await;
                outcomes.push((version, definition, result));
            }
            outcomes
        }));
    }
    let mut winners = Vec::new();
    let mut losers = 0;
    for task in tasks {
        for (read, definition, result) in task.await.unwrap() {
            match result {
                Ok(committed) => winners.push((read, definition, committed)),
                Err(StoreError::Stale { .. }) => losers += 1,
                Err(StoreError::Conflict { target, .. }) if target == "flag:counter" => losers += 1,
                Err(other) => panic!("a losing writer got {other:?}"),
            }
        }
    }
    assert_eq!(winners.len() + losers, WRITERS * ATTEMPTS);
    assert!(!winners.is_empty());
    let n = as_u64(winners.len());

    // Exactly one winner per version and per revision, each building on the version before.
    winners.sort_by_key(|(_, _, committed)| committed.versions[0]);
    let versions: Vec<u64> = winners.iter().map(|(_, _, c)| c.versions[0]).collect();
    assert_eq!(versions, (2..=n + 1).collect::<Vec<_>>());
    let revisions: BTreeSet<u64> = winners.iter().map(|(_, _, c)| c.revision).collect();
    assert_eq!(revisions, (2..=n + 1).collect());
    for (read, _, committed) in &winners {
        assert_eq!(*read + 1, committed.versions[0]);
    }

    // The store agrees: its revision counts the commits, its audit log has one event for each,
    // and the history holds every winner's definition at its version.
    let snapshot = store.snapshot().await.unwrap();
    assert_eq!(snapshot.revision, n + 1);
    assert_eq!(snapshot.flags[0].version, n + 1);
    let query = AuditQuery {
        limit: 1000,
        ..AuditQuery::default()
    };
    let events = store.audit(&query).await.unwrap();
    assert_eq!(as_u64(events.len()), n + 1);
    let audited: BTreeSet<u64> = events.iter().map(|e| e.revision).collect();
    assert_eq!(audited, (1..=n + 1).collect());
    let history = store.flag_history("counter").await.unwrap();
    assert_eq!(as_u64(history.len()), n + 1);
    for (_, definition, committed) in &winners {
        let version = &history[usize::try_from(committed.versions[0] - 1).unwrap()];
        assert_eq!(version.definition.as_ref(), Some(definition));
        assert_eq!(version.revision, committed.revision);
    }
}

pub async fn a_large_definition_round_trips(store: DynStore) {
    let users: Vec<String> = (0..80_000).map(|i| format!("user-{i:08}")).collect();
    let definition = json!({
        "description": "a flag with a very long target list",
        "targets": {"on": users},
        "rollout": 50,
    });
    assert!(serde_json::to_string(&definition).unwrap().len() > 1_000_000);

    let commit = Commit {
        after: Some(definition.clone()),
        ..by(
            "alice",
            0,
            vec![put_flag("big", &definition, Expected::Absent)],
        )
    };
    store.commit(commit).await.unwrap();
    let snapshot = store.snapshot().await.unwrap();
    assert!(snapshot.flags[0].definition == definition);
    let history = store.flag_history("big").await.unwrap();
    assert!(history[0].definition.as_ref() == Some(&definition));
    let events = store.audit(&AuditQuery::default()).await.unwrap();
    assert!(events[0].after.as_ref() == Some(&definition));
}

pub async fn definitions_keep_their_key_order(store: DynStore) {
    // The order of an object's keys is the writer's, not alphabetical: exports and diffs show
    // a flag as it was written.
    let definition: Value =
        serde_json::from_str(r#"{"zeta": 1, "alpha": {"y": [3, 1], "b": null}, "mid": "x"}"#)
            .unwrap();
    let committed = commit_ok(
        &store,
        vec![put_flag("ordered", &definition, Expected::Absent)],
    )
    .await;
    let text = |value: &Value| serde_json::to_string(value).unwrap();
    let expected = r#"{"zeta":1,"alpha":{"y":[3,1],"b":null},"mid":"x"}"#;
    let snapshot = store.snapshot().await.unwrap();
    assert_eq!(text(&snapshot.flags[0].definition), expected);
    let history = store.flag_history("ordered").await.unwrap();
    assert_eq!(text(history[0].definition.as_ref().unwrap()), expected);
    assert_eq!(committed.versions, [1]);
}

pub async fn the_revision_follows_commits(store: DynStore) {
    assert_eq!(store.revision().await.unwrap(), 0);
    commit_ok(&store, vec![add_environment("qa")]).await;
    assert_eq!(store.revision().await.unwrap(), 1);
    // Nothing moves it but a commit: not a failed one, not a read.
    let failed = store
        .commit(by("alice", 1, vec![add_environment("qa")]))
        .await;
    assert_eq!(describe(failed), "AlreadyExists(environment:qa)");
    let stale = store.commit(by("alice", 0, vec![])).await;
    assert_eq!(describe(stale), "Stale(1)");
    store.snapshot().await.unwrap();
    assert_eq!(store.revision().await.unwrap(), 1);
    for expected in 2..=4 {
        commit_ok(&store, vec![]).await;
        assert_eq!(store.revision().await.unwrap(), expected);
        assert_eq!(store.snapshot().await.unwrap().revision, expected);
    }
}

pub async fn reopening_keeps_everything(fixture: &dyn Fixture) {
    let store = fixture.open().await;
    commit_ok(
        &store,
        vec![
            add_environment("development"),
            add_environment("production"),
            put_flag("kept", &json!({"rollout": 10}), Expected::Absent),
            put_flag("deleted", &json!(true), Expected::Absent),
            put_segment(
                "internal",
                &json!({"include": ["user-1"]}),
                Expected::Absent,
            ),
            Change::CreateKey(api_key("k1", KeyKind::Admin, None, "hash-1")),
            Change::CreateKey(api_key("k2", KeyKind::Server, Some("production"), "hash-2")),
        ],
    )
    .await;
    let commit = Commit {
        comment: Some("before the restart".to_owned()),
        before: Some(json!({"rollout": 10})),
        after: Some(json!({"rollout": 20})),
        ..by(
            "bob",
            1,
            vec![
                put_flag("kept", &json!({"rollout": 20}), Expected::Version(1)),
                delete_flag("deleted", Expected::Version(1)),
                revoke_key("k2"),
            ],
        )
    };
    store.commit(commit).await.unwrap();
    let before = State::read(&store, &["kept", "deleted"]).await;
    drop(store);

    let store = fixture.open().await;
    assert_eq!(State::read(&store, &["kept", "deleted"]).await, before);
    // And it carries on where it stopped.
    let next = commit_ok(
        &store,
        vec![
            put_flag("kept", &json!({"rollout": 30}), Expected::Version(2)),
            put_flag("deleted", &json!(false), Expected::Absent),
        ],
    )
    .await;
    assert_eq!((next.revision, next.versions.as_slice()), (3, &[3, 3][..]));
    drop(store);

    let store = fixture.open().await;
    let snapshot = store.snapshot().await.unwrap();
    assert_eq!(snapshot.revision, 3);
    assert_eq!(store.audit(&AuditQuery::default()).await.unwrap().len(), 3);
}

pub async fn stores_sharing_a_database_see_each_others_commits(fixture: &dyn Fixture) {
    // Two servers on one database: nothing either caches may hide the other's commits.
    let a = fixture.open().await;
    let b = fixture.open().await;
    a.commit(by(
        "alice",
        0,
        vec![put_flag("f", &json!(1), Expected::Absent)],
    ))
    .await
    .unwrap();
    assert_eq!(b.revision().await.unwrap(), 1);
    let seen = b.snapshot().await.unwrap();
    assert_eq!((seen.revision, seen.flags.len()), (1, 1));
    b.commit(by(
        "bob",
        1,
        vec![put_flag("f", &json!(2), Expected::Version(1))],
    ))
    .await
    .unwrap();
    assert_eq!(a.flag_history("f").await.unwrap().len(), 2);
    let outcome = describe(
        a.commit(by(
            "alice",
            1,
            vec![put_flag("f", &json!(3), Expected::Version(1))],
        ))
        .await,
    );
    assert_eq!(outcome, "Stale(2)");
    let outcome = describe(
        a.commit(by(
            "alice",
            2,
            vec![put_flag("f", &json!(3), Expected::Version(1))],
        ))
        .await,
    );
    assert_eq!(outcome, "Conflict(flag:f, Some(2))");

    // Both race to write on top of revision 2: exactly one wins.
    let (from_a, from_b) = tokio::join!(
        a.commit(by(
            "alice",
            2,
            vec![put_flag("f", &json!("a"), Expected::Version(2))]
        )),
        b.commit(by(
            "bob",
            2,
            vec![put_flag("f", &json!("b"), Expected::Version(2))]
        )),
    );
    let outcomes = [describe(from_a), describe(from_b)];
    assert!(
        outcomes.contains(&"Ok(revision 3)".to_owned())
            && outcomes.contains(&"Stale(3)".to_owned()),
        "{outcomes:?}"
    );
    assert_eq!(a.audit(&AuditQuery::default()).await.unwrap().len(), 3);
    assert_eq!(b.snapshot().await.unwrap(), a.snapshot().await.unwrap());
    assert_eq!(a.revision().await.unwrap(), 3);
    assert_eq!(b.revision().await.unwrap(), 3);
}

// ---------------------------------------------------------------------------------------------
// Helpers.

/// Everything a store can be asked, for comparing before and after.
#[derive(Debug, PartialEq)]
struct State {
    snapshot: Snapshot,
    histories: Vec<Vec<FlagVersion>>,
    audit: Vec<AuditEvent>,
    keys: Vec<ApiKey>,
}

impl State {
    async fn read(store: &DynStore, flags: &[&str]) -> State {
        let mut histories = Vec::new();
        for flag in flags {
            histories.push(store.flag_history(flag).await.unwrap());
        }
        let query = AuditQuery {
            limit: 1000,
            ..AuditQuery::default()
        };
        State {
            snapshot: store.snapshot().await.unwrap(),
            histories,
            audit: store.audit(&query).await.unwrap(),
            keys: store.keys().await.unwrap(),
        }
    }
}

/// A commit's outcome in a form a table can hold.
pub(crate) fn describe(result: Result<Committed, StoreError>) -> String {
    match result {
        Ok(committed) => format!("Ok(revision {})", committed.revision),
        Err(StoreError::Stale { current }) => format!("Stale({current})"),
        Err(StoreError::Conflict { target, current }) => format!("Conflict({target}, {current:?})"),
        Err(StoreError::NotFound { target }) => format!("NotFound({target})"),
        Err(StoreError::AlreadyExists { target }) => format!("AlreadyExists({target})"),
        Err(other) => format!("unexpected error: {other}"),
    }
}

/// Commits `changes` on the current revision, as `alice`, and expects success.
async fn commit_ok(store: &DynStore, changes: Vec<Change>) -> Committed {
    let revision = store.snapshot().await.unwrap().revision;
    store.commit(by("alice", revision, changes)).await.unwrap()
}

pub(crate) fn by(actor: &str, base_revision: u64, changes: Vec<Change>) -> Commit {
    Commit {
        base_revision,
        actor: actor.to_owned(),
        action: "test".to_owned(),
        target: "config".to_owned(),
        comment: None,
        before: None,
        after: None,
        changes,
    }
}

pub(crate) fn put_flag(key: &str, definition: &Value, expected: Expected) -> Change {
    Change::PutFlag {
        key: key.to_owned(),
        definition: definition.clone(),
        expected,
    }
}

fn delete_flag(key: &str, expected: Expected) -> Change {
    Change::DeleteFlag {
        key: key.to_owned(),
        expected,
    }
}

fn put_segment(name: &str, definition: &Value, expected: Expected) -> Change {
    Change::PutSegment {
        name: name.to_owned(),
        definition: definition.clone(),
        expected,
    }
}

fn delete_segment(name: &str, expected: Expected) -> Change {
    Change::DeleteSegment {
        name: name.to_owned(),
        expected,
    }
}

fn add_environment(name: &str) -> Change {
    Change::AddEnvironment {
        name: name.to_owned(),
    }
}

fn revoke_key(id: &str) -> Change {
    Change::RevokeKey { id: id.to_owned() }
}

fn api_key(id: &str, kind: KeyKind, environment: Option<&str>, secret_hash: &str) -> ApiKey {
    ApiKey {
        id: id.to_owned(),
        name: format!("{id} name"),
        kind,
        environment: environment.map(str::to_owned),
        secret_hash: secret_hash.to_owned(),
        created_at: "2026-01-15T10:00:00Z".parse().unwrap(),
        revoked_at: None,
    }
}

fn flag_version(
    key: &str,
    version: u64,
    definition: Option<&Value>,
    committed: &Committed,
    by: &str,
) -> FlagVersion {
    FlagVersion {
        key: key.to_owned(),
        version,
        definition: definition.cloned(),
        updated_at: committed.at,
        updated_by: by.to_owned(),
        revision: committed.revision,
    }
}

fn as_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap()
}
