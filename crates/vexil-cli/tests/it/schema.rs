//! `vexil schema` prints the JSON Schema of the flag file.

use super::vexil;

#[test]
fn prints_a_json_object() {
    let run = vexil(&["schema"]);
    assert_eq!(run.code, 0, "{}", run.render());
    assert!(run.stderr.is_empty(), "{}", run.render());
    let schema: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("`vexil schema` prints invalid JSON: {e}"));
    assert!(schema.is_object(), "a JSON Schema is an object: {schema}");
}
