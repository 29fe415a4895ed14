//! The OpenAPI document describes the API that is served.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::Server;

/// A value for a path parameter that the route accepts.
fn sample(parameter: &str) -> &'static str {
    match parameter {
        "invoiceNumber" => "1",
        "name" => "Invoices",
        _ => "00000000-0000-4000-8000-000000000777",
    }
}

fn refs(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("$ref") {
                found.push(target.clone());
            }
            map.values().for_each(|v| refs(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_is_routed_and_every_schema_exists() {
    let Some(server) = Server::start().await else {
        return;
    };
    let document = server.get("/openapi.json").await.expect(200);
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().unwrap();
    assert!(paths.len() >= 25, "{}", paths.len());
    for required in [
        "/students",
        "/courses",
        "/courses/{courseId}/enrollments",
        "/invoices",
        "/course-books",
        "/admin/store",
        "/events/stream",
    ] {
        assert!(paths.contains_key(required), "{required} is not documented");
    }

    for list in [
        "/students",
        "/courses",
        "/course-books",
        "/invoices",
        "/courses/{courseId}/announcements",
    ] {
        let get = &paths[list]["get"];
        let names: Vec<&str> = get["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert!(
            names.contains(&"limit") && names.contains(&"cursor"),
            "{list} is paged: {names:?}"
        );
        let page = &get["responses"]["200"]["content"]["application/json"]["schema"];
        assert_eq!(page["required"], json!(["items", "nextCursor"]), "{list}");
    }

    let mut operations = 0;
    for (template, methods) in paths {
        let path = template
            .split('/')
            .map(
                |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(parameter) => sample(parameter),
                    None => segment,
                },
            )
            .collect::<Vec<_>>()
            .join("/");
        for (method, operation) in methods.as_object().unwrap() {
            let streams = operation["responses"]["200"]["content"]
                .get("text/event-stream")
                .is_some();
            if streams {
                // A live feed never ends by itself: check its headers, then hang up.
                let response = server.open_stream(&path, None).await;
                assert_eq!(response.status().as_u16(), 200, "{method} {path}");
                let content_type = response.headers()["content-type"].to_str().unwrap();
                assert_eq!(content_type, "text/event-stream", "{method} {path}");
                operations += 1;
                continue;
            }
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let reply = server.call(method.clone(), &path, Some(json!({}))).await;
            let kind = reply.body["type"].as_str().unwrap_or_default();
            assert!(
                kind != "/problems/no-such-route" && kind != "/problems/method-not-allowed",
                "{method} {template} is documented but not routed: {reply:?}"
            );
            assert!(reply.status < 500, "{method} {path}: {reply:?}");
            operations += 1;
        }
    }
    assert!(operations >= 33, "{operations}");

    let mut found = Vec::new();
    refs(&document, &mut found);
    let schemas = document["components"]["schemas"].as_object().unwrap();
    for target in found {
        let name = target.trim_start_matches("#/components/schemas/");
        assert!(schemas.contains_key(name), "dangling reference {target}");
    }
    server.stop().await;
}
