//! The `--json` interface of every command, pinned: the fields (as paths) each document has, so
//! that a script written against one version keeps working with the next.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;

use serde_json::Value;
use support::{TestResult, arg, run_json, seeded_store};

/// Every field path of `value` (`a.b`, `list[].c`), with the JSON type of each leaf.
fn shape(value: &Value) -> Vec<String> {
    fn walk(value: &Value, path: &str, out: &mut BTreeSet<String>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(v, &p, out);
                }
            }
            Value::Array(items) => {
                for item in items {
                    walk(item, &format!("{path}[]"), out);
                }
                if items.is_empty() {
                    out.insert(format!("{path}: array"));
                }
            }
            leaf => {
                let kind = match leaf {
                    Value::Null => "null",
                    Value::Bool(_) => "bool",
                    Value::Number(_) => "number",
                    _ => "string",
                };
                out.insert(format!("{path}: {kind}"));
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(value, "", &mut out);
    out.into_iter().collect()
}

#[test]
fn every_command_prints_a_document_of_a_fixed_shape() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = seeded_store(tmp.path(), "records", 12);
    let export = tmp.path().join("export");
    let backup = tmp.path().join("backup");
    let key = tmp.path().join("key");
    let none = tmp.path().join("none");
    let runs: Vec<(&str, Vec<&str>)> = vec![
        ("stats", vec!["stats", arg(&dir)]),
        ("verify", vec!["verify", arg(&dir)]),
        ("query", vec!["query", arg(&dir), "--limit", "1"]),
        ("keygen", vec!["keygen", arg(&key)]),
        (
            "export",
            vec!["export", arg(&dir), arg(&export), "--sign", arg(&key)],
        ),
        ("verify-export", vec!["verify-export", arg(&export)]),
        ("backup", vec!["backup", arg(&dir), arg(&backup)]),
        ("restore-check", vec!["restore-check", arg(&backup)]),
        (
            "projections-status",
            vec!["projections", arg(&dir), "status"],
        ),
        ("error", vec!["stats", arg(&none)]),
    ];
    for (name, args) in runs {
        let (code, doc) = run_json(&args);
        assert!(code == 0 || name == "error", "{name}: {doc}");
        insta::assert_snapshot!(format!("json-{name}"), shape(&doc).join("\n"));
    }
    Ok(())
}
