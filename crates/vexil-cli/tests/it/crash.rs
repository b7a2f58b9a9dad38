//! `kill -9` loses no acknowledged write, and the audit log matches the flags (PRODUCT.md
//! section 7).
//!
//! The test drives a real `vexil serve` process: it makes a series of writes over HTTP — flags
//! created, updated with `If-Match`, switched off and on, deleted; a segment; a key; many of them
//! from concurrent tasks, some contending on one flag — and keeps what each acknowledgement said.
//! Right after the last acknowledgement it kills the process with SIGKILL, so no shutdown code
//! runs, restarts it on the same data directory and checks that every acknowledged write is
//! there: each flag and segment at its acknowledged version and definition, each key usable, and
//! exactly one audit event per acknowledged write (plus the bootstrap event). Then it does it
//! again, a few times, on the same directory.

use std::collections::BTreeMap;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::server_process::{Api, Reply, Server};

/// How many times the server is written to, killed and restarted.
const CYCLES: usize = 4;
/// Concurrent tasks writing a flag of their own each.
const OWN_WRITERS: usize = 6;
/// Concurrent tasks incrementing a counter in one shared flag, with `If-Match` and retries.
const SHARED_WRITERS: usize = 4;
/// How many increments each of those tasks gets acknowledged.
const SHARED_INCREMENTS: u64 = 5;
/// The environment the kill switch is thrown in.
const ENV: &str = "production";

/// A versioned record as acknowledged: its version and definition.
type Versioned = (u64, Value);

/// One acknowledged write.
#[derive(Debug, Clone)]
struct Ack {
    /// The audit action it must have produced.
    action: &'static str,
    /// The audit target it must have produced.
    target: String,
    effect: Effect,
}

#[derive(Debug, Clone)]
enum Effect {
    Flag { key: String, record: Versioned },
    FlagDeleted { key: String },
    Segment { name: String, record: Versioned },
    Key { id: String, secret: String },
}

/// What the acknowledged writes add up to: the state the server must have after any restart.
#[derive(Debug, Default)]
struct Model {
    flags: BTreeMap<String, Versioned>,
    segments: BTreeMap<String, Versioned>,
    /// Key id → secret.
    keys: BTreeMap<String, String>,
    /// The audit `(action, target)` of every acknowledged write.
    events: Vec<(String, String)>,
}

impl Model {
    /// Records acknowledgements. Those of concurrent writers arrive in no particular order; a
    /// record's state is the one of its highest acknowledged version.
    fn record(&mut self, acks: impl IntoIterator<Item = Ack>) {
        for ack in acks {
            self.events.push((ack.action.to_owned(), ack.target));
            match ack.effect {
                Effect::Flag { key, record } => newest(&mut self.flags, key, record),
                Effect::FlagDeleted { key } => {
                    self.flags.remove(&key);
                }
                Effect::Segment { name, record } => newest(&mut self.segments, name, record),
                Effect::Key { id, secret } => {
                    self.keys.insert(id, secret);
                }
            }
        }
    }

    fn flag_version(&self, key: &str) -> u64 {
        self.flags
            .get(key)
            .unwrap_or_else(|| panic!("the model has no flag `{key}`"))
            .0
    }
}

fn newest(records: &mut BTreeMap<String, Versioned>, key: String, record: Versioned) {
    match records.get(&key) {
        Some((version, _)) if *version >= record.0 => {}
        _ => {
            records.insert(key, record);
        }
    }
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let mut model = Model::default();

    for cycle in 0..CYCLES {
        let server = Server::start(&data_dir);
        let api = server.admin();
        runtime.block_on(async {
            verify(&api, &model, &format!("after restart {cycle}")).await;
            let acks = sequential_writes(&api, &model, cycle).await;
            model.record(acks);
            let shared = format!("c{cycle}_shared");
            let ack = put_flag(&api, &shared, None, &counter(0), "flag.create").await;
            model.record([ack]);
            let acks = concurrent_writes(&api, cycle).await;
            // The moment the last acknowledgement is in: no request may follow it.
            server.kill();
            check_no_lost_update(&acks, &shared);
            model.record(acks);
        });
    }

    // And once more, to check the state the last cycle left.
    let server = Server::start(&data_dir);
    let api = server.admin();
    runtime.block_on(verify(&api, &model, "after the last restart"));
    let bootstrap_and_writes = model.events.len() + 1;
    assert!(
        bootstrap_and_writes <= 1000,
        "the audit check reads at most 1000 events; the test makes {bootstrap_and_writes}"
    );
    drop(server);
}

/// Writes one after the other: a segment, flags using it, updates with `If-Match`, the kill
/// switch, a key, a stale write that must change nothing, a deletion, and an update of a flag
/// written before the last restart.
async fn sequential_writes(api: &Api, model: &Model, cycle: usize) -> Vec<Ack> {
    let p = format!("c{cycle}");
    let staff = format!("{p}_staff");
    let release = format!("{p}_release");
    let color = format!("{p}_color");
    let doomed = format!("{p}_doomed");
    let mut acks = Vec::new();

    let segment_v1 = json!({
        "description": "Staff",
        "include": ["user-1"],
        "when": [{"attribute": "email", "op": "ends_with", "values": ["@example.com"]}],
    });
    acks.push(put_segment(api, &staff, None, &segment_v1, "segment.create").await);

    let release_v1 = json!({
        "description": format!("release flag of cycle {cycle}"),
        "owner": "team-a",
        "rules": [{"name": "staff", "when": [{"segment": staff}], "serve": "on"}],
        "rollout": 10,
    });
    acks.push(put_flag(api, &release, None, &release_v1, "flag.create").await);
    let color_v1 = json!({
        "variants": {"blue": "#0055ff", "green": "#00aa55"},
        "off": "blue",
        "rollout": {"blue": 50, "green": 50},
    });
    acks.push(put_flag(api, &color, None, &color_v1, "flag.create").await);
    acks.push(put_flag(api, &doomed, None, &json!(true), "flag.create").await);

    let mut release_v2 = release_v1.clone();
    release_v2["rollout"] = json!(20);
    acks.push(put_flag(api, &release, Some(1), &release_v2, "flag.update").await);
    acks.push(switch(api, &release, false, 2).await);
    acks.push(switch(api, &release, true, 3).await);

    let mut segment_v2 = segment_v1.clone();
    segment_v2["exclude"] = json!(["user-9"]);
    acks.push(put_segment(api, &staff, Some(1), &segment_v2, "segment.update").await);

    acks.push(create_key(api, &format!("{p} web"), cycle).await);

    // A stale `If-Match` is refused and leaves no trace: not acknowledged, no audit event.
    let stale = api
        .send(
            Method::PUT,
            &format!("/api/v1/flags/{release}"),
            Some(1),
            Some(&json!(false)),
        )
        .await;
    assert_eq!(
        stale.status,
        StatusCode::PRECONDITION_FAILED,
        "{}",
        stale.body
    );

    acks.push(delete_flag(api, &doomed, 1).await);

    // Flags written before the last kill are writable after the restart, at their versions.
    if cycle > 0 {
        let previous = format!("c{}_color", cycle - 1);
        let version = model.flag_version(&previous);
        let mut definition = color_v1.clone();
        definition["rollout"] = json!({"blue": 10, "green": 90});
        acks.push(put_flag(api, &previous, Some(version), &definition, "flag.update").await);
    }
    acks
}

/// Writes from concurrent tasks: each of [`OWN_WRITERS`] creates a flag of its own, updates it
/// with `If-Match` and throws its kill switch off and on again; the [`SHARED_WRITERS`] increment
/// the counter of `c{cycle}_shared` with `If-Match`, retrying on 412. Returns every
/// acknowledgement once all tasks are done.
async fn concurrent_writes(api: &Api, cycle: usize) -> Vec<Ack> {
    let mut tasks = Vec::new();
    for t in 0..OWN_WRITERS {
        let api = api.clone();
        let key = format!("c{cycle}_own_{t}");
        tasks.push(tokio::spawn(async move {
            let v1 = json!({"description": format!("written by task {t}"), "rollout": 5});
            let mut v2 = v1.clone();
            v2["rollout"] = json!(50);
            let mut acks = vec![put_flag(&api, &key, None, &v1, "flag.create").await];
            acks.push(put_flag(&api, &key, Some(1), &v2, "flag.update").await);
            acks.push(switch(&api, &key, false, 2).await);
            // The kill switch added an override for its environment: build on what it wrote.
            let Effect::Flag { record, .. } = &acks[2].effect else {
                unreachable!("a switch acknowledges a flag")
            };
            let mut v4 = record.1.clone();
            v4["tags"] = json!(["concurrent", format!("task-{t}")]);
            acks.push(put_flag(&api, &key, Some(3), &v4, "flag.update").await);
            acks.push(switch(&api, &key, true, 4).await);
            acks
        }));
    }
    for _ in 0..SHARED_WRITERS {
        let api = api.clone();
        let key = format!("c{cycle}_shared");
        tasks.push(tokio::spawn(async move {
            let mut acks = Vec::new();
            for _ in 0..SHARED_INCREMENTS {
                acks.push(increment(&api, &key).await);
            }
            acks
        }));
    }
    let mut acks = Vec::new();
    for task in tasks {
        acks.extend(task.await.expect("a writer task panicked"));
    }
    acks
}

/// A flag whose description holds a counter.
fn counter(n: u64) -> Value {
    json!({"description": format!("count {n}"), "serve": "off"})
}

fn count_of(definition: &Value) -> u64 {
    definition["description"]
        .as_str()
        .and_then(|d| d.strip_prefix("count "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no counter in {definition}"))
}

/// Reads the shared flag and writes it back with its counter plus one, guarded by `If-Match`;
/// on 412 (someone else wrote first) starts over.
async fn increment(api: &Api, key: &str) -> Ack {
    loop {
        let current = api
            .send(Method::GET, &format!("/api/v1/flags/{key}"), None, None)
            .await;
        assert_eq!(current.status, StatusCode::OK, "{}", current.body);
        let version = current.body["version"].as_u64().unwrap();
        assert_eq!(current.etag, Some(format!("\"{version}\"")));
        let next = counter(count_of(&current.body["definition"]) + 1);
        let reply = api
            .send(
                Method::PUT,
                &format!("/api/v1/flags/{key}"),
                Some(version),
                Some(&next),
            )
            .await;
        if reply.status == StatusCode::PRECONDITION_FAILED {
            continue;
        }
        return flag_ack(reply, key, &next, "flag.update", Some(version + 1));
    }
}

/// With `If-Match`, no increment is lost: the acknowledged versions of the shared flag are
/// consecutive, and the last one holds every increment.
fn check_no_lost_update(acks: &[Ack], shared: &str) {
    let mut versions: Vec<(u64, u64)> = acks
        .iter()
        .filter_map(|a| match &a.effect {
            Effect::Flag { key, record } if key == shared => Some((record.0, count_of(&record.1))),
            _ => None,
        })
        .collect();
    versions.sort_unstable();
    let total = SHARED_INCREMENTS * SHARED_WRITERS as u64;
    let expected: Vec<(u64, u64)> = (1..=total).map(|n| (n + 1, n)).collect();
    assert_eq!(
        versions, expected,
        "(version, counter) of every acknowledged increment"
    );
}

async fn put_flag(
    api: &Api,
    key: &str,
    if_match: Option<u64>,
    definition: &Value,
    action: &'static str,
) -> Ack {
    let reply = api
        .send(
            Method::PUT,
            &format!("/api/v1/flags/{key}"),
            if_match,
            Some(definition),
        )
        .await;
    flag_ack(reply, key, definition, action, if_match.map(|v| v + 1))
}

/// Checks a flag write's reply and turns it into an acknowledgement.
fn flag_ack(
    reply: Reply,
    key: &str,
    definition: &Value,
    action: &'static str,
    version: Option<u64>,
) -> Ack {
    let Reply { status, etag, body } = reply;
    assert!(
        status == StatusCode::OK || status == StatusCode::CREATED,
        "{action} {key}: {status} {body}"
    );
    assert_eq!(body["key"], json!(key));
    assert_eq!(
        &body["definition"], definition,
        "{action} {key}: the stored definition"
    );
    let acknowledged = body["version"].as_u64().unwrap();
    if let Some(version) = version {
        assert_eq!(acknowledged, version, "{action} {key}: the new version");
    }
    assert_eq!(etag, Some(format!("\"{acknowledged}\"")));
    Ack {
        action,
        target: format!("flag:{key}"),
        effect: Effect::Flag {
            key: key.to_owned(),
            record: (acknowledged, body["definition"].clone()),
        },
    }
}

/// The kill switch of `key` in [`ENV`]; the flag is at `version` before.
async fn switch(api: &Api, key: &str, enable: bool, version: u64) -> Ack {
    let verb = if enable { "enable" } else { "disable" };
    let reply = api
        .send(
            Method::POST,
            &format!("/api/v1/flags/{key}/environments/{ENV}/{verb}"),
            Some(version),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{verb} {key}: {}", reply.body);
    let definition = reply.body["definition"].clone();
    let enabled_there = definition["environments"][ENV]["enabled"] != json!(false);
    assert_eq!(enabled_there, enable, "{verb} {key}: {definition}");
    let action = if enable {
        "flag.enable"
    } else {
        "flag.disable"
    };
    flag_ack(reply, key, &definition, action, Some(version + 1))
}

async fn put_segment(
    api: &Api,
    name: &str,
    if_match: Option<u64>,
    definition: &Value,
    action: &'static str,
) -> Ack {
    let Reply { status, etag, body } = api
        .send(
            Method::PUT,
            &format!("/api/v1/segments/{name}"),
            if_match,
            Some(definition),
        )
        .await;
    assert!(
        status == StatusCode::OK || status == StatusCode::CREATED,
        "{action} {name}: {status} {body}"
    );
    assert_eq!(&body["definition"], definition);
    let version = body["version"].as_u64().unwrap();
    assert_eq!(version, if_match.map_or(1, |v| v + 1));
    assert_eq!(etag, Some(format!("\"{version}\"")));
    Ack {
        action,
        target: format!("segment:{name}"),
        effect: Effect::Segment {
            name: name.to_owned(),
            record: (version, body["definition"].clone()),
        },
    }
}

async fn delete_flag(api: &Api, key: &str, version: u64) -> Ack {
    let reply = api
        .send(
            Method::DELETE,
            &format!("/api/v1/flags/{key}"),
            Some(version),
            None,
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::NO_CONTENT,
        "delete {key}: {}",
        reply.body
    );
    Ack {
        action: "flag.delete",
        target: format!("flag:{key}"),
        effect: Effect::FlagDeleted {
            key: key.to_owned(),
        },
    }
}

async fn create_key(api: &Api, name: &str, cycle: usize) -> Ack {
    let body = json!({"name": name, "kind": "client", "environment": ENV});
    let reply = api
        .send(Method::POST, "/api/v1/keys", None, Some(&body))
        .await;
    assert_eq!(
        reply.status,
        StatusCode::CREATED,
        "key {cycle}: {}",
        reply.body
    );
    let id = reply.body["id"].as_str().unwrap().to_owned();
    let secret = reply.body["secret"].as_str().unwrap().to_owned();
    Ack {
        action: "key.create",
        target: format!("key:{id}"),
        effect: Effect::Key { id, secret },
    }
}

/// Checks the server against the model: flags, segments, keys and the audit log.
async fn verify(api: &Api, model: &Model, when: &str) {
    let flags = api.get("/api/v1/flags").await;
    let found = records(&flags["flags"], "key");
    assert_same(&found, &model.flags, &format!("flags {when}"));

    let segments = api.get("/api/v1/segments").await;
    let found = records(&segments["segments"], "name");
    assert_same(&found, &model.segments, &format!("segments {when}"));

    // Every key created is there, and its secret still opens the API.
    let keys = api.get("/api/v1/keys").await;
    let ids: Vec<&str> = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    for (id, secret) in &model.keys {
        assert!(
            ids.contains(&id.as_str()),
            "key {id} is missing {when}: {ids:?}"
        );
        let client = Api::new(api.base_url(), secret);
        let reply = client
            .send(
                Method::POST,
                "/ofrep/v1/evaluate/flags/no_such_flag",
                None,
                Some(&json!({"context": {"targetingKey": "user-1"}})),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "key {id} {when}: {}",
            reply.body
        );
    }

    let audit = api.get("/api/v1/audit?limit=1000").await;
    let events = audit["events"].as_array().unwrap();
    let bootstraps: Vec<&Value> = events
        .iter()
        .filter(|e| e["action"] == "bootstrap")
        .collect();
    assert_eq!(bootstraps.len(), 1, "one bootstrap event {when}");
    assert_eq!(
        events.last().map(|e| &e["action"]),
        Some(&json!("bootstrap")),
        "the bootstrap event is the oldest {when}"
    );
    let mut logged: Vec<(String, String)> = events
        .iter()
        .filter(|e| e["action"] != "bootstrap")
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["target"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut acknowledged = model.events.clone();
    logged.sort();
    acknowledged.sort();
    if logged != acknowledged {
        let missing: Vec<_> = difference(&acknowledged, &logged);
        let extra: Vec<_> = difference(&logged, &acknowledged);
        panic!(
            "the audit log {when} has {} events besides the bootstrap, for {} acknowledged writes;\n\
             acknowledged but not logged: {missing:?}\nlogged but not acknowledged: {extra:?}",
            logged.len(),
            acknowledged.len()
        );
    }
    // One event per commit: their revisions are exactly 1, 2, … with no gap.
    let mut revisions: Vec<u64> = events
        .iter()
        .map(|e| e["revision"].as_u64().unwrap())
        .collect();
    revisions.sort_unstable();
    let expected: Vec<u64> = (1..=events.len() as u64).collect();
    assert_eq!(revisions, expected, "audit revisions {when}");

    // The newest event of each flag and segment says what it is now.
    for (prefix, model_records) in [("flag", &model.flags), ("segment", &model.segments)] {
        for (key, (_, definition)) in model_records {
            let target = format!("{prefix}:{key}");
            let newest = events
                .iter()
                .find(|e| e["target"] == json!(target))
                .unwrap_or_else(|| panic!("no audit event for {target} {when}"));
            assert_eq!(
                &newest["after"], definition,
                "the last audit event of {target} {when}"
            );
        }
    }
}

/// `[{KEY_FIELD, version, definition}]` → key → (version, definition).
fn records(list: &Value, key_field: &str) -> BTreeMap<String, Versioned> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r[key_field].as_str().unwrap().to_owned(),
                (r["version"].as_u64().unwrap(), r["definition"].clone()),
            )
        })
        .collect()
}

fn assert_same(
    found: &BTreeMap<String, Versioned>,
    expected: &BTreeMap<String, Versioned>,
    what: &str,
) {
    let mut problems = Vec::new();
    for (key, record) in expected {
        match found.get(key) {
            None => problems.push(format!(
                "{key}: missing (acknowledged at version {})",
                record.0
            )),
            Some(f) if f != record => problems.push(format!(
                "{key}: version {} {}, acknowledged version {} {}",
                f.0, f.1, record.0, record.1
            )),
            Some(_) => {}
        }
    }
    for key in found.keys().filter(|k| !expected.contains_key(*k)) {
        problems.push(format!(
            "{key}: present but never acknowledged (or deleted)"
        ));
    }
    assert!(problems.is_empty(), "{what}:\n{}", problems.join("\n"));
}

/// The items of sorted `a` that sorted `b` lacks, counting repeats.
fn difference<T: Ord + Clone>(a: &[T], b: &[T]) -> Vec<T> {
    let mut out = Vec::new();
    let mut j = 0;
    for x in a {
        while j < b.len() && b[j] < *x {
            j += 1;
        }
        if j < b.len() && b[j] == *x {
            j += 1;
        } else {
            out.push(x.clone());
        }
    }
    out
}
