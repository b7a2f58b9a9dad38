//! Test support: clients whose flags a test sets directly, and "test both paths".
//!
//! [`TestClient`] holds an in-memory document; its [`client`](TestClient::client) is a normal
//! [`Client`] (the code under test takes a `Client`, not a test type), and every `set_*`
//! reaches it at once. [`for_each_variant`] runs a test body once for every variant of a flag,
//! with a client that serves that variant to everyone.
//!
//! ```
//! use vexil::Context;
//! use vexil::testing::{TestClient, for_each_variant};
//!
//! fn greeting(flags: &vexil::Client, ctx: &Context) -> &'static str {
//!     if flags.is_enabled("friendly_greeting", ctx) { "Hi!" } else { "Hello." }
//! }
//!
//! let flags = TestClient::new();
//! flags.set_bool("friendly_greeting", true);
//! let ctx = Context::with_targeting_key("user-1");
//! assert_eq!(greeting(&flags.client(), &ctx), "Hi!");
//!
//! // Both paths: once with the flag off, once on.
//! for_each_variant(&flags, "friendly_greeting", |variant, client| {
//!     let expected = if variant == "on" { "Hi!" } else { "Hello." };
//!     assert_eq!(greeting(client, &ctx), expected);
//! });
//! ```
//!
//! These helpers are for tests: given an invalid definition or an unknown flag they panic with
//! the reason, like an assertion.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Map, Value, json};
use vexil_engine::Config;

use crate::client::{Client, Defs, Shared, Status};

/// The fields of a flag that make up its targeting (what [`TestClient::set_variant`] and
/// [`for_each_variant`] replace with one `serve`).
const TARGETING_FIELDS: [&str; 9] = [
    "enabled",
    "prerequisites",
    "targets",
    "rules",
    "serve",
    "rollout",
    "bucket_by",
    "salt",
    "environments",
];

/// An in-memory client for tests: set flags directly, hand [`TestClient::client`] to the code
/// under test.
///
/// ```
/// use serde_json::json;
/// use vexil::Context;
/// use vexil::testing::TestClient;
///
/// let flags = TestClient::new();
/// flags
///     .set_bool("dark_mode", true)
///     .set_flag("button_color", json!({
///         "variants": {"blue": "#0055ff", "green": "#00aa55"},
///         "off": "blue",
///         "serve": "blue",
///     }))
///     .set_variant("button_color", "green");
/// let client = flags.client();
/// let ctx = Context::new();
/// assert!(client.is_enabled("dark_mode", &ctx));
/// assert_eq!(client.string_value("button_color", &ctx, "#000000"), "#00aa55");
/// ```
#[derive(Debug)]
pub struct TestClient {
    client: Client,
    doc: Mutex<Value>,
}

impl Default for TestClient {
    fn default() -> Self {
        TestClient::new()
    }
}

impl TestClient {
    /// A client with no flags (every evaluation returns the caller's default with
    /// `FLAG_NOT_FOUND`), [`Status::Ready`].
    pub fn new() -> TestClient {
        TestClient::from_document(json!({"flags": {}, "segments": {}}))
    }

    /// A client serving a whole flag document (section 1 of the product; with environments,
    /// the first is evaluated).
    ///
    /// # Panics
    /// When the document is not valid.
    pub fn from_document(document: Value) -> TestClient {
        let defs = compile(&document, 1);
        TestClient {
            client: Client::with_shared(Arc::new(Shared::new(Some(defs), Status::Ready)), None),
            doc: Mutex::new(document),
        }
    }

    /// The client to hand to the code under test. It follows every later `set_*`.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// Sets a boolean flag serving `on` (`true`) or `off` (`false`) to everyone.
    pub fn set_bool(&self, key: &str, on: bool) -> &Self {
        self.set_flag(key, json!({ "serve": if on { "on" } else { "off" } }))
    }

    /// Makes flag `key` serve `variant` to everyone. An existing flag keeps its variants (its
    /// targeting is replaced); a new one is a boolean flag for `on`/`off`, else a string flag
    /// whose only variant is `variant` with that name as its value.
    ///
    /// # Panics
    /// When the flag has no such variant.
    pub fn set_variant(&self, key: &str, variant: &str) -> &Self {
        self.update(|doc| {
            let flags = section(doc, "flags");
            let def = match flags.get(key) {
                Some(def) => serve_everyone(def, variant),
                None if variant == "on" || variant == "off" => json!({ "serve": variant }),
                None => {
                    json!({ "variants": { variant: variant }, "off": variant, "serve": variant })
                }
            };
            flags.insert(key.to_owned(), def);
        })
    }

    /// Sets a flag's whole definition (section 1 of the product: `true`, `false`, or an object
    /// with `variants`, `rules`, `rollout`, …).
    ///
    /// # Panics
    /// When the definition is not valid (the message lists every problem).
    pub fn set_flag(&self, key: &str, definition: Value) -> &Self {
        self.update(|doc| {
            section(doc, "flags").insert(key.to_owned(), definition);
        })
    }

    /// Sets a segment's definition.
    ///
    /// # Panics
    /// When the definition is not valid.
    pub fn set_segment(&self, name: &str, definition: Value) -> &Self {
        self.update(|doc| {
            section(doc, "segments").insert(name.to_owned(), definition);
        })
    }

    /// Removes a flag (evaluations then return the caller's default with `FLAG_NOT_FOUND`).
    ///
    /// # Panics
    /// When another flag names it as a prerequisite.
    pub fn remove_flag(&self, key: &str) -> &Self {
        self.update(|doc| {
            section(doc, "flags").remove(key);
        })
    }

    fn update(&self, change: impl FnOnce(&mut Value)) -> &Self {
        let mut doc = self.doc.lock().unwrap_or_else(PoisonError::into_inner);
        let mut next = doc.clone();
        change(&mut next);
        let revision = self.client.revision() + 1;
        let defs = compile(&next, revision);
        *doc = next;
        self.client.shared().install(defs, Status::Ready);
        self
    }
}

/// The object `doc[name]`, created when missing.
fn section<'d>(doc: &'d mut Value, name: &str) -> &'d mut Map<String, Value> {
    if !doc.is_object() {
        *doc = json!({});
    }
    let Value::Object(map) = doc else {
        unreachable!("made an object above")
    };
    let entry = map
        .entry(name.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    match entry {
        Value::Object(m) => m,
        _ => unreachable!("made an object above"),
    }
}

/// A flag definition serving `variant` to everyone, in every environment.
fn serve_everyone(def: &Value, variant: &str) -> Value {
    let mut map = match def {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    for field in TARGETING_FIELDS {
        map.remove(field);
    }
    map.insert("serve".into(), json!(variant));
    Value::Object(map)
}

fn compile(doc: &Value, revision: u64) -> Defs {
    match Config::from_json(doc) {
        Ok(config) => Defs {
            config,
            env: None,
            document: Arc::new(doc.clone()),
            revision,
        },
        Err(e) => {
            let problems: Vec<String> = e.diagnostics.iter().map(ToString::to_string).collect();
            panic!(
                "vexil::testing: the flag document is not valid:\n  {}",
                problems.join("\n  ")
            )
        }
    }
}

/// Definitions [`for_each_variant`] can start from: a [`Client`], a [`TestClient`], a flag
/// document as JSON ([`serde_json::Value`]) or as text (`str`, YAML or JSON).
pub trait VariantSource {
    /// The document and the environment evaluated in (`None` for the first).
    ///
    /// # Panics
    /// When there are no definitions (a client not ready) or the text is not a document.
    #[doc(hidden)]
    fn document(&self) -> (Value, Option<String>);
}

impl VariantSource for Client {
    fn document(&self) -> (Value, Option<String>) {
        match self.shared().defs() {
            Some(defs) => (
                Value::clone(&defs.document),
                defs.env.as_deref().map(str::to_owned),
            ),
            None => panic!(
                "vexil::testing: the client has no definitions yet ({})",
                self.status()
            ),
        }
    }
}

impl VariantSource for TestClient {
    fn document(&self) -> (Value, Option<String>) {
        self.client.document()
    }
}

impl VariantSource for Value {
    fn document(&self) -> (Value, Option<String>) {
        (self.clone(), None)
    }
}

impl VariantSource for str {
    fn document(&self) -> (Value, Option<String>) {
        match vexil_engine::parse_text(self) {
            Ok(node) => (node.to_json(), None),
            Err(d) => panic!("vexil::testing: the flag document cannot be read: {d}"),
        }
    }
}

/// Runs `body` once for every variant of `flag`, in declaration order, with a client that
/// serves that variant to everyone (every other flag as in `source`): "test both paths".
///
/// When the body panics, the variant is printed before the panic goes on, so the failing path
/// is named.
///
/// ```
/// use vexil::Context;
/// use vexil::testing::for_each_variant;
///
/// let doc = "flags:\n  search_enabled: {kind: ops, serve: on}\n";
/// let mut seen = Vec::new();
/// for_each_variant(doc, "search_enabled", |variant, client| {
///     let on = client.bool_value("search_enabled", &Context::new(), true);
///     seen.push((variant.to_owned(), on));
/// });
/// assert_eq!(seen, [("on".to_owned(), true), ("off".to_owned(), false)]);
/// ```
///
/// # Panics
/// When `source` has no definitions or no flag `flag`, or when `body` panics.
pub fn for_each_variant<S, F>(source: &S, flag: &str, mut body: F)
where
    S: VariantSource + ?Sized,
    F: FnMut(&str, &Client),
{
    let (doc, env) = source.document();
    let config = match Config::from_json(&doc) {
        Ok(c) => c,
        Err(e) => panic!("vexil::testing: the flag document is not valid: {e}"),
    };
    let Some(f) = config.flag(flag) else {
        panic!("vexil::testing: there is no flag `{flag}` to run every variant of");
    };
    let variants: Vec<String> = f.variants().map(|(name, _)| name.to_owned()).collect();
    for variant in &variants {
        let mut forced = doc.clone();
        let flags = section(&mut forced, "flags");
        let def = flags.get(flag).cloned().unwrap_or(Value::Null);
        flags.insert(flag.to_owned(), serve_everyone(&def, variant));
        let mut defs = compile(&forced, 1);
        defs.env = env.clone().map(Into::into);
        let client = Client::with_shared(Arc::new(Shared::new(Some(defs), Status::Ready)), None);
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| body(variant, &client))) {
            eprintln!(
                "vexil::testing::for_each_variant: the body failed for `{flag}` = `{variant}`"
            );
            resume_unwind(panic);
        }
    }
}
