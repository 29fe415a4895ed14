//! The OpenAPI document and the server agree: every documented operation is routed, every
//! reply of a tour over the whole API has a documented status, content type and a body valid
//! against the documented schema, every request body's example is accepted, and every bound
//! the document gives (lengths, ranges, item counts, the page size) is the server's: a value
//! at the bound is accepted, one past it refused with a 400 problem.

use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::Method;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::support::{Reply, Server};

/// The document, with a checker of replies against it.
struct Contract {
    document: Value,
    /// Replies checked so far.
    checked: AtomicUsize,
}

impl Contract {
    async fn load(server: &Server) -> Contract {
        let reply = server.get("/openapi.json").await;
        assert_eq!(reply.content_type, "application/json", "{reply:?}");
        let document = reply.expect(200);
        assert_eq!(document["openapi"], "3.1.0");
        Contract {
            document,
            checked: AtomicUsize::new(0),
        }
    }

    fn paths(&self) -> &Map<String, Value> {
        self.document["paths"].as_object().unwrap()
    }

    /// The documented path template that `path` (without its query) is an instance of; a
    /// literal segment wins over a parameter (`/course-books/orders` over `{bookId}`).
    fn template(&self, path: &str) -> &str {
        let path = path.split('?').next().unwrap();
        let segments: Vec<&str> = path.split('/').collect();
        let mut best: Option<(&str, usize)> = None;
        for template in self.paths().keys() {
            let parts: Vec<&str> = template.split('/').collect();
            if parts.len() != segments.len() {
                continue;
            }
            let mut literal = 0;
            let fits = parts.iter().zip(&segments).all(|(part, segment)| {
                if part.starts_with('{') {
                    true
                } else {
                    literal += 1;
                    part == segment
                }
            });
            if fits && best.is_none_or(|(_, most)| literal > most) {
                best = Some((template, literal));
            }
        }
        best.unwrap_or_else(|| panic!("{path} is not documented")).0
    }

    fn operation(&self, method: &Method, path: &str) -> &Value {
        let template = self.template(path);
        let operation = &self.paths()[template][method.as_str().to_lowercase()];
        assert!(
            operation.is_object(),
            "{method} {template} is not documented"
        );
        operation
    }

    /// A validator of `schema`, whose references point into the document's components.
    fn validator(&self, schema: &Value) -> jsonschema::Validator {
        let mut root = schema.clone();
        root["components"] = self.document["components"].clone();
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|e| panic!("{schema} is not a valid schema: {e}"))
    }

    /// Checks a reply of `method path` against the document: its status is documented, its
    /// content type is the documented one, its body is valid against the documented schema.
    #[track_caller]
    fn check(&self, method: &Method, path: &str, reply: &Reply) {
        let operation = self.operation(method, path);
        let status = reply.status.to_string();
        let response = &operation["responses"][&status];
        assert!(
            response.is_object(),
            "{method} {path} answered {status}, which is not documented: {reply:?}"
        );
        let Some(content) = response["content"].as_object() else {
            return;
        };
        let media = reply.content_type.split(';').next().unwrap().trim();
        let documented = content
            .get(media)
            .unwrap_or_else(|| panic!("{method} {path} {status}: {media} is not documented"));
        let validator = self.validator(&documented["schema"]);
        let errors: Vec<String> = validator
            .iter_errors(&reply.body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {path} {status}: the body does not match the document: {errors:?}\n{}",
            reply.body
        );
        self.checked.fetch_add(1, Ordering::Relaxed);
    }

    /// Sends a request and checks its reply.
    async fn call(
        &self,
        server: &Server,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        let reply = server.call(method.clone(), path, body).await;
        self.check(&method, path, &reply);
        reply
    }

    /// The schema a `$ref` names, or the schema itself.
    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema["$ref"].as_str() {
            Some(target) => {
                let name = target.trim_start_matches("#/components/schemas/");
                &self.document["components"]["schemas"][name]
            }
            None => schema,
        }
    }

    /// The success status of an operation: its one documented 2xx.
    fn success(operation: &Value) -> u16 {
        let statuses: Vec<u16> = operation["responses"]
            .as_object()
            .unwrap()
            .keys()
            .filter_map(|s| s.parse().ok())
            .filter(|s| (200..300).contains(s))
            .collect();
        assert_eq!(statuses.len(), 1, "{operation}");
        statuses[0]
    }

    /// Every operation with a JSON request body: method, path template, the body's schema.
    fn bodies(&self) -> Vec<(Method, String, Value)> {
        let mut found = Vec::new();
        for (template, item) in self.paths() {
            for (method, operation) in item.as_object().unwrap() {
                let schema = &operation["requestBody"]["content"]["application/json"]["schema"];
                if schema.is_object() {
                    let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                    found.push((method, template.clone(), self.resolve(schema).clone()));
                }
            }
        }
        found
    }
}

static UNIQUE: AtomicUsize = AtomicUsize::new(0);

fn unique() -> usize {
    UNIQUE.fetch_add(1, Ordering::Relaxed)
}

/// What the documented requests refer to, made from the document's own examples.
struct Fixture {
    student: String,
    course: String,
    aggregate: String,
    book: String,
    token: String,
}

impl Fixture {
    async fn new(server: &Server, contract: &Contract) -> Fixture {
        let example = |method: Method, template: &str| {
            let bodies = contract.bodies();
            let (_, _, schema) = bodies
                .iter()
                .find(|(m, t, _)| *m == method && t == template)
                .unwrap_or_else(|| panic!("{method} {template} takes no body"));
            schema["example"].clone()
        };
        let mut student = example(Method::POST, "/students");
        student["email"] = json!(format!("fixture{}@example.edu", unique()));
        let student = contract
            .call(server, Method::POST, "/students", Some(student))
            .await
            .created("studentId");
        let course_body = example(Method::POST, "/courses");
        let course = contract
            .call(server, Method::POST, "/courses", Some(course_body.clone()))
            .await
            .created("courseId");
        let aggregate = contract
            .call(
                server,
                Method::POST,
                "/aggregate/courses",
                Some(course_body),
            )
            .await
            .created("courseId");
        let mut book = example(Method::POST, "/course-books");
        book["courseId"] = json!(course);
        let book = contract
            .call(server, Method::POST, "/course-books", Some(book))
            .await
            .created("bookId");
        let token = contract
            .call(
                server,
                Method::POST,
                &format!("/exams/{}/registration-tokens", Uuid::new_v4()),
                Some(json!({"studentId": student})),
            )
            .await
            .created("tokenId");
        Fixture {
            student,
            course,
            aggregate,
            book,
            token,
        }
    }

    /// `template` with its parameters filled in with this fixture's ids (a fresh exam).
    fn path(&self, template: &str) -> String {
        let course = if template.starts_with("/aggregate/") {
            &self.aggregate
        } else {
            &self.course
        };
        template
            .replace("{studentId}", &self.student)
            .replace("{courseId}", course)
            .replace("{bookId}", &self.book)
            .replace("{tokenId}", &self.token)
            .replace("{examId}", &Uuid::new_v4().to_string())
    }

    /// `body` with the ids it names replaced by this fixture's, and the values that must be
    /// unique made unique.
    fn fill(&self, body: &mut Value) {
        match body {
            Value::Object(map) => {
                for (key, value) in map.iter_mut() {
                    match key.as_str() {
                        "studentId" | "customerId" => *value = json!(self.student),
                        "courseId" => *value = json!(self.course),
                        "bookId" => *value = json!(self.book),
                        "idempotencyToken" => *value = json!(Uuid::new_v4()),
                        "email" => *value = json!(format!("u{}@example.edu", unique())),
                        _ => self.fill(value),
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| self.fill(item)),
            _ => {}
        }
    }
}

/// A text of `length` characters for `property`: an email address that is unique, or `x`s.
fn text(property: &str, length: usize) -> String {
    if property == "email" {
        let domain = "@example.edu";
        let prefix = format!("u{}", unique());
        let fill = length.saturating_sub(prefix.len() + domain.len());
        format!("{prefix}{}{domain}", "x".repeat(fill))
    } else {
        "x".repeat(length)
    }
}

/// One request that the document says must succeed (`true`) or be refused with 400.
struct Probe {
    what: String,
    property: String,
    value: Value,
    accepted: bool,
}

/// The probes of one body schema's bounds.
fn probes(schema: &Value) -> Vec<Probe> {
    let mut probes = Vec::new();
    let mut probe = |what: String, property: &str, value: Value, accepted: bool| {
        probes.push(Probe {
            what,
            property: property.to_owned(),
            value,
            accepted,
        });
    };
    for (name, property) in schema["properties"].as_object().unwrap() {
        if let Some(max) = property["maxLength"].as_u64() {
            let max = usize::try_from(max).unwrap();
            probe(
                format!("{name} of maxLength {max}"),
                name,
                json!(text(name, max)),
                true,
            );
            probe(
                format!("{name} over maxLength {max}"),
                name,
                json!(text(name, max + 1)),
                false,
            );
        }
        if let Some(min) = property["minLength"].as_u64() {
            let min = usize::try_from(min).unwrap();
            // An empty value shows a minimum of 1; a longer minimum is only necessary (an
            // email of 3 characters is not an address), so only the value under it is probed.
            probe(
                format!("{name} under minLength {min}"),
                name,
                json!("x".repeat(min - 1)),
                false,
            );
        }
        if let Some(min) = property["minimum"].as_i64() {
            probe(format!("{name} at minimum {min}"), name, json!(min), true);
            probe(
                format!("{name} under minimum {min}"),
                name,
                json!(min - 1),
                false,
            );
        }
        if let Some(max) = property["maximum"].as_i64() {
            probe(format!("{name} at maximum {max}"), name, json!(max), true);
            probe(
                format!("{name} over maximum {max}"),
                name,
                json!(max + 1),
                false,
            );
        }
        if let Some(max) = property["maxItems"].as_u64() {
            let item = json!({"bookId": Uuid::new_v4(), "displayedPrice": 39.99});
            let items: Vec<Value> = (0..=max).map(|_| item.clone()).collect();
            probe(
                format!("{name} over maxItems {max}"),
                name,
                json!(items),
                false,
            );
        }
        if property["minItems"].as_u64() == Some(1) {
            probe(format!("{name} under minItems 1"), name, json!([]), false);
        }
    }
    probes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_is_routed_and_named() {
    let Some(server) = Server::start().await else {
        return;
    };
    let contract = Contract::load(&server).await;
    let document = &contract.document;
    let paths = contract.paths();
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

    let mut operation_ids = std::collections::BTreeSet::new();
    let mut operations = 0;
    for (template, methods) in paths {
        assert!(
            !template.contains('_'),
            "{template}: parameters are named as the API names its fields (camelCase)"
        );
        let path = template
            .split('/')
            .map(|segment| {
                if segment == "{invoiceNumber}" {
                    "1".to_owned()
                } else if segment.starts_with('{') {
                    if segment == "{name}" {
                        "Invoices".to_owned()
                    } else {
                        "00000000-0000-4000-8000-000000000777".to_owned()
                    }
                } else {
                    segment.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        for (method, operation) in methods.as_object().unwrap() {
            let id = operation["operationId"].as_str().unwrap_or_default();
            assert!(!id.is_empty(), "{method} {template} has no operationId");
            assert!(
                operation_ids.insert(id.to_owned()),
                "operationId {id} twice"
            );
            // A summary is one short line for a person, not a paragraph.
            let summary = operation["summary"].as_str().unwrap_or_default();
            assert!(
                !summary.is_empty() && summary.len() <= 60 && !summary.contains('`'),
                "{method} {template}: summary {summary:?}"
            );
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
            // An empty object: each route refuses it or finds nothing, and says so as documented.
            let reply = contract
                .call(&server, method.clone(), &path, Some(json!({})))
                .await;
            let kind = reply.body["type"].as_str().unwrap_or_default();
            assert!(
                kind != "/problems/no-such-route" && kind != "/problems/method-not-allowed",
                "{method} {template} is documented but not routed: {reply:?}"
            );
            operations += 1;
        }
    }
    assert!(operations >= 39, "{operations}");

    // Every list route is paged, with the bounds the server checks.
    for list in [
        "/students",
        "/courses",
        "/course-books",
        "/invoices",
        "/courses/{courseId}/announcements",
    ] {
        let get = &paths[list]["get"];
        let parameters = get["parameters"].as_array().unwrap();
        let limit = parameters.iter().find(|p| p["name"] == "limit").unwrap();
        assert!(parameters.iter().any(|p| p["name"] == "cursor"), "{list}");
        let page =
            contract.resolve(&get["responses"]["200"]["content"]["application/json"]["schema"]);
        assert_eq!(page["required"], json!(["items", "nextCursor"]), "{list}");
        let (min, max) = (
            limit["schema"]["minimum"].as_u64().unwrap(),
            limit["schema"]["maximum"].as_u64().unwrap(),
        );
        assert_eq!(max, course_management::paging::MAX_LIMIT as u64);
        assert_eq!(
            limit["schema"]["default"].as_u64().unwrap(),
            course_management::paging::DEFAULT_LIMIT as u64
        );
        if list == "/students" {
            for (limit, status) in [(min, 200), (max, 200), (min - 1, 400), (max + 1, 400)] {
                let path = format!("{list}?limit={limit}");
                contract
                    .call(&server, Method::GET, &path, None)
                    .await
                    .expect(status);
            }
        }
    }

    let mut found = Vec::new();
    refs(document, &mut found);
    let schemas = document["components"]["schemas"].as_object().unwrap();
    for target in found {
        let name = target.trim_start_matches("#/components/schemas/");
        assert!(schemas.contains_key(name), "dangling reference {target}");
    }
    server.stop().await;
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
async fn every_example_is_accepted_and_every_bound_is_the_servers() {
    let Some(server) = Server::start().await else {
        return;
    };
    let contract = Contract::load(&server).await;
    let bodies = contract.bodies();
    assert!(bodies.len() >= 17, "{}", bodies.len());
    let mut bounds = 0;
    for (method, template, schema) in &bodies {
        let operation = contract.operation(method, template);
        let success = Contract::success(operation);
        let example = &schema["example"];
        assert!(
            example.is_object(),
            "{method} {template}: the body has no example"
        );

        let fixture = Fixture::new(&server, &contract).await;
        let mut body = example.clone();
        fixture.fill(&mut body);
        let path = fixture.path(template);
        let reply = contract
            .call(&server, method.clone(), &path, Some(body))
            .await;
        assert_eq!(
            reply.status, success,
            "{method} {template}'s example: {reply:?}"
        );

        for probe in probes(schema) {
            let fixture = Fixture::new(&server, &contract).await;
            let mut body = example.clone();
            fixture.fill(&mut body);
            body[&probe.property] = probe.value;
            let path = fixture.path(template);
            let reply = contract
                .call(&server, method.clone(), &path, Some(body))
                .await;
            let what = format!("{method} {template} with {}", probe.what);
            if probe.accepted {
                assert_eq!(reply.status, success, "{what}: {reply:?}");
            } else {
                let detail = reply.problem(400);
                assert!(detail.contains(&probe.property), "{what}: {detail}");
            }
            bounds += 1;
        }
    }
    assert!(bounds >= 30, "{bounds}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checker_refuses_replies_the_document_does_not_describe() {
    let Some(server) = Server::start().await else {
        return;
    };
    let contract = Contract::load(&server).await;
    let reply = |status: u16, content_type: &str, body: Value| Reply {
        status,
        content_type: content_type.to_owned(),
        location: None,
        body,
    };
    let id = Uuid::new_v4().to_string();
    let good = reply(201, "application/json", json!({"studentId": id}));
    contract.check(&Method::POST, "/students", &good);
    for (what, bad) in [
        (
            "a field of the wrong type",
            reply(201, "application/json", json!({"studentId": 5})),
        ),
        ("a missing field", reply(201, "application/json", json!({}))),
        (
            "an id that is no uuid",
            reply(201, "application/json", json!({"studentId": "x"})),
        ),
        (
            "an undocumented status",
            reply(202, "application/json", json!({"studentId": id})),
        ),
        (
            "an error that is not a problem",
            reply(400, "application/json", json!({"studentId": id})),
        ),
    ] {
        let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            contract.check(&Method::POST, "/students", &bad);
        }));
        assert!(checked.is_err(), "{what} passed the check");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reply_of_a_tour_matches_the_document() {
    let Some(server) = Server::start().await else {
        return;
    };
    let contract = Contract::load(&server).await;
    let fixture = Fixture::new(&server, &contract).await;
    let (c, s) = (&contract, &server);
    let post = move |path: String, body: Value| async move {
        let body = (!body.is_null()).then_some(body);
        c.call(s, Method::POST, &path, body).await
    };
    let student = fixture.student.clone();
    let course = fixture.course.clone();
    post(
        format!("/courses/{course}/enrollments"),
        json!({"studentId": student}),
    )
    .await
    .expect(201);
    let invoice = post(
        "/invoices".to_owned(),
        json!({"customerId": student, "amount": 12.5}),
    )
    .await
    .expect(201);
    let number = invoice["invoiceNumber"].as_u64().unwrap();
    post(
        format!("/course-books/{}/purchases", fixture.book),
        json!({"studentId": student, "displayedPrice": 39.99}),
    )
    .await
    .expect(201);
    let posted = post(
        format!("/courses/{course}/announcements"),
        json!({"title": "Welcome", "idempotencyToken": Uuid::new_v4()}),
    )
    .await
    .expect(201);
    post(
        format!("/aggregate/courses/{}/subscriptions", fixture.aggregate),
        json!({"studentId": student}),
    )
    .await
    .expect(201);
    post(
        format!("/exam-registration-tokens/{}/revoke", fixture.token),
        Value::Null,
    )
    .await
    .expect(200);
    server.rebuilds_settled().await;

    // Every read, with the fixture's ids and with ids that do not exist.
    let mut reads = 0;
    for (template, item) in contract.paths() {
        if item["get"].is_null() || template == "/events/stream" {
            continue;
        }
        let path = fixture
            .path(template)
            .replace("{invoiceNumber}", &number.to_string())
            .replace("{name}", "CourseShortInfo");
        let reply = contract.call(&server, Method::GET, &path, None).await;
        assert!(
            reply.status == 200 || reply.status == 503,
            "{path}: {reply:?}"
        );
        if template.contains('{') && !template.contains("{name}") {
            let missing = template
                .replace("{invoiceNumber}", "999999")
                .split('/')
                .map(|s| {
                    if s.starts_with('{') {
                        Uuid::new_v4().to_string()
                    } else {
                        s.to_owned()
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            let reply = contract.call(&server, Method::GET, &missing, None).await;
            assert!(
                reply.status == 404 || reply.status == 200,
                "{missing}: {reply:?}"
            );
        }
        reads += 1;
    }
    assert!(reads >= 15, "{reads}");

    // Filters and pages of the lists.
    for path in [
        "/students?tier=basic&isMaxedOut=false&limit=1".to_owned(),
        format!("/course-books?courseId={course}"),
        format!("/invoices?customerId={student}"),
        "/courses?isFull=false&limit=2".to_owned(),
    ] {
        contract
            .call(&server, Method::GET, &path, None)
            .await
            .expect(200);
    }
    let retract = format!(
        "/courses/{course}/announcements/{}/retract",
        posted["announcementId"].as_str().unwrap()
    );
    post(retract, Value::Null).await.expect(200);

    // The errors, as documented.
    contract
        .call(&server, Method::GET, "/students/not-a-uuid", None)
        .await
        .problem(400);
    post(
        format!("/courses/{course}/enrollments"),
        json!({"studentId": student}),
    )
    .await
    .problem(400);
    post("/students".to_owned(), json!({"firstName": 1}))
        .await
        .problem(400);
    let huge = json!({"firstName": "x".repeat(3 * 1024 * 1024), "lastName": "y", "email": "h@example.edu"});
    post("/students".to_owned(), huge).await.problem(413);
    let plain = server
        .client
        .post(format!("{}/students", server.base))
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    let reply = Reply {
        status: plain.status().as_u16(),
        content_type: plain.headers()["content-type"].to_str().unwrap().to_owned(),
        location: None,
        body: plain.json().await.unwrap(),
    };
    contract.check(&Method::POST, "/students", &reply);
    assert_eq!(reply.status, 415);
    contract
        .call(&server, Method::DELETE, "/admin/store", None)
        .await
        .problem(400);
    post(
        "/admin/projections/CourseShortInfo/rebuild".to_owned(),
        Value::Null,
    )
    .await
    .expect(200);
    post("/admin/projections/Nope/rebuild".to_owned(), Value::Null)
        .await
        .problem(404);
    assert!(contract.checked.load(Ordering::Relaxed) >= 40);
    server.stop().await;
}
