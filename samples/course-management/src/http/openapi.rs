//! The OpenAPI 3.1 document, written by hand next to the routes it describes (a test checks
//! that every operation it lists is routed).

use serde_json::{Map, Value, json};

use crate::paging::{DEFAULT_LIMIT, MAX_LIMIT};

fn string() -> Value {
    json!({"type": "string"})
}

fn uuid() -> Value {
    json!({"type": "string", "format": "uuid"})
}

fn integer() -> Value {
    json!({"type": "integer", "minimum": 0})
}

fn money() -> Value {
    json!({"type": "number", "multipleOf": 0.01, "description": "an amount with at most two decimals"})
}

fn boolean() -> Value {
    json!({"type": "boolean"})
}

fn timestamp() -> Value {
    json!({"type": "string", "format": "date-time"})
}

fn array(items: Value) -> Value {
    json!({"type": "array", "items": items})
}

fn nullable(schema: Value) -> Value {
    json!({"oneOf": [schema, {"type": "null"}]})
}

fn schema(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn tier() -> Value {
    json!({"type": "string", "enum": ["Basic", "Standard", "Professional", "Master"]})
}

/// An object schema; every property is required unless listed in `optional`.
fn object(properties: &[(&str, Value)], optional: &[&str]) -> Value {
    let required: Vec<&str> = properties
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| !optional.contains(name))
        .collect();
    let properties: Map<String, Value> = properties
        .iter()
        .map(|(name, schema)| ((*name).to_owned(), schema.clone()))
        .collect();
    json!({"type": "object", "required": required, "properties": properties})
}

/// One page of a list: its items and the cursor of the next page.
fn listing(items: Value) -> Value {
    let mut page = object(
        &[("items", array(items)), ("nextCursor", nullable(string()))],
        &[],
    );
    page["description"] = json!(
        "One page of the list, in key order. Pass nextCursor as ?cursor= (with the same filters) for the next page; it is null on the last page."
    );
    page
}

/// The paging parameters every list route takes, after its own.
fn paged(mut parameters: Vec<Value>) -> Vec<Value> {
    parameters.push(query_param(
        "limit",
        json!({"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}),
        "items per page; 0 or more than the maximum is a 400 problem",
    ));
    parameters.push(query_param(
        "cursor",
        string(),
        "the nextCursor of the previous page; leave it out for the first page; a cursor no page returned is a 400 problem",
    ));
    parameters
}

/// `GET /events/stream`: Server-Sent Events, which OpenAPI 3.1 has no words for; the stream
/// is `text/event-stream`, and `x-event-data` names the schema of each message's data.
fn live_feed() -> Value {
    let parameters = vec![
        query_param(
            "type",
            string(),
            "repeatable: only events of any of these types (no type: every type); an empty one is a 400 problem",
        ),
        query_param(
            "tag",
            string(),
            "repeatable, key:value (split at the first colon): only events carrying every one of these tags; one that is not key:value is a 400 problem",
        ),
        query_param(
            "after",
            integer(),
            "first the stored events after this position (0: every stored event), then the new ones; without it, only events committed from now on",
        ),
        json!({"name": "Last-Event-ID", "in": "header", "required": false, "schema": integer(),
            "description": "the id of the last message received, which a reconnecting EventSource sends: the feed resumes after it (it wins over after); past the last event is a 400 problem"}),
    ];
    let mut op = operation(
        "Live feed",
        "The store's events as Server-Sent Events, as they are committed (by this process or another on the same store)",
        parameters,
        None,
        (200, None),
        &[400, 503],
    );
    op["description"] = json!(
        "Each event is one message: `id:` its position, `event:` its type, `data:` a FeedEvent. \
         The stream opens with a comment naming where it starts, sends a `keep-alive` comment \
         when idle for 15 s, and ends with a `feed-error` message ({kind, detail}) when the store \
         fails, or a `feed-end` message ({reason}) when the store is deleted or the server stops."
    );
    op["responses"]["200"]["content"] = json!({"text/event-stream": {
        "schema": {"type": "string", "description": "Server-Sent Events"},
        "x-event-data": schema("FeedEvent"),
    }});
    op
}

fn path_param(name: &str, schema: Value) -> Value {
    json!({"name": name, "in": "path", "required": true, "schema": schema})
}

fn query_param(name: &str, schema: Value, description: &str) -> Value {
    json!({"name": name, "in": "query", "required": false, "schema": schema, "description": description})
}

/// One operation. `ok` is the success status and its body schema; every error is
/// problem+json.
fn operation(
    tag: &str,
    summary: &str,
    parameters: Vec<Value>,
    body: Option<&str>,
    ok: (u16, Option<Value>),
    errors: &[u16],
) -> Value {
    let mut responses = Map::new();
    let (status, content) = ok;
    let description = match status {
        201 => "Created",
        _ => "OK",
    };
    responses.insert(
        status.to_string(),
        match content {
            Some(schema) => json!({"description": description, "content": {"application/json": {"schema": schema}}}),
            None => json!({"description": description}),
        },
    );
    for error in errors {
        let description = match error {
            400 => "Invalid request, or a business rule forbids it",
            404 => "Something it refers to does not exist",
            409 => "Concurrent updates that retries could not resolve, or work in progress",
            503 => "The store or a read model is not available yet",
            _ => "Error",
        };
        responses.insert(
            error.to_string(),
            json!({"description": description, "content": {"application/problem+json": {"schema": schema("Problem")}}}),
        );
    }
    if let Some(conflict) = responses.get_mut("409") {
        conflict["headers"] = json!({"Retry-After": {
            "description": "seconds to wait before sending the same request again (always 1)",
            "schema": {"type": "integer"}}});
    }
    if body.is_some() {
        for (status, description) in [
            (413, "The body is over the limit of 2 MiB"),
            (415, "The body was not sent as application/json"),
        ] {
            responses.insert(
                status.to_string(),
                json!({"description": description, "content": {"application/problem+json": {"schema": schema("Problem")}}}),
            );
        }
    }
    let mut op = json!({"tags": [tag], "summary": summary, "parameters": parameters, "responses": responses});
    if let Some(body) = body {
        op["requestBody"] =
            json!({"required": true, "content": {"application/json": {"schema": schema(body)}}});
    }
    op
}

fn schemas() -> Value {
    let student_info = [
        ("studentId", uuid()),
        ("firstName", string()),
        ("lastName", string()),
        ("email", string()),
        ("personalDataErased", boolean()),
        ("enrollmentTier", tier()),
        ("courseCount", integer()),
        ("maxCourses", integer()),
        ("isMaxedOut", boolean()),
    ];
    let mut student_details = student_info.to_vec();
    student_details.push((
        "courses",
        array(object(&[("courseId", uuid()), ("name", string())], &[])),
    ));
    let course_info = [
        ("courseId", uuid()),
        ("name", string()),
        ("description", string()),
        ("maxStudentCount", integer()),
        ("currentEnrollmentCount", integer()),
        ("isFull", boolean()),
    ];
    let mut course_details = course_info.to_vec();
    course_details.push((
        "enrolledStudents",
        array(object(
            &[
                ("studentId", uuid()),
                ("firstName", string()),
                ("lastName", string()),
                ("email", string()),
                ("personalDataErased", boolean()),
            ],
            &[],
        )),
    ));
    let purchase = object(
        &[
            ("purchaseId", uuid()),
            ("bookId", uuid()),
            ("courseId", uuid()),
            ("studentId", uuid()),
            ("pricePaid", money()),
        ],
        &[],
    );
    let failure = object(
        &[
            ("name", string()),
            ("position", nullable(integer())),
            ("reason", string()),
        ],
        &[],
    );
    let feed_event = object(
        &[
            ("position", integer()),
            ("type", string()),
            (
                "tags",
                array(object(&[("key", string()), ("value", string())], &[])),
            ),
            (
                "payload",
                json!({"type": "object", "description": "the event's payload, as stored"}),
            ),
            ("timestamp", timestamp()),
        ],
        &[],
    );
    json!({
        "Problem": object(&[("type", string()), ("title", string()), ("status", integer()), ("detail", string())], &[]),
        "RegisterStudent": object(&[("firstName", string()), ("lastName", string()), ("email", string())], &[]),
        "StudentCreated": object(&[("studentId", uuid())], &[]),
        "ForgetStudent": object(&[
            ("reason", json!({"type": "string", "minLength": 1, "maxLength": 200, "description": "why, such as the erasure request's reference"})),
            ("requestedBy", json!({"type": "string", "minLength": 1, "maxLength": 200, "description": "who asked: the SubjectForgotten event's user_id"})),
        ], &[]),
        "StudentForgotten": object(&[("studentId", uuid()), ("position", integer()), ("alreadyForgotten", boolean())], &[]),
        "StudentShortInfo": object(&student_info, &[]),
        "StudentDetails": object(&student_details, &[]),
        "Subscription": object(&[("enrollmentTier", tier())], &[]),
        "CreateCourse": object(&[("name", string()), ("description", string()), ("maxStudentCount", integer())], &["description"]),
        "CourseCreated": object(&[("courseId", uuid())], &[]),
        "CourseShortInfo": object(&course_info, &[]),
        "CourseDetails": object(&course_details, &[]),
        "StudentLimit": object(&[("maxStudentCount", integer())], &[]),
        "StudentRef": object(&[("studentId", uuid())], &[]),
        "Enrollment": object(&[("courseId", uuid()), ("studentId", uuid())], &[]),
        "CreateInvoice": object(&[("customerId", uuid()), ("amount", money())], &[]),
        "InvoiceCreated": object(&[("invoiceNumber", integer())], &[]),
        "Invoice": object(&[("invoiceNumber", integer()), ("customerId", uuid()), ("amount", money()), ("createdAt", timestamp())], &[]),
        "ExamToken": object(&[
            ("tokenId", uuid()),
            ("status", json!({"type": "string", "enum": ["Issued", "Revoked", "Redeemed"]})),
            ("examId", uuid()),
            ("studentId", uuid()),
        ], &[]),
        "DefineBook": object(&[("courseId", uuid()), ("title", string()), ("author", string()), ("isbn", string()), ("price", money())], &["author", "isbn"]),
        "BookCreated": object(&[("bookId", uuid())], &[]),
        "Book": object(&[
            ("bookId", uuid()), ("courseId", uuid()), ("title", string()), ("author", string()), ("isbn", string()),
            ("price", money()), ("previousPrice", nullable(money())), ("priceChangedAt", nullable(timestamp())),
        ], &[]),
        "NewPrice": object(&[("newPrice", money())], &[]),
        "Purchase": object(&[("studentId", uuid()), ("displayedPrice", money())], &[]),
        "PurchaseReceipt": purchase.clone(),
        "Order": object(&[
            ("studentId", uuid()),
            ("items", array(object(&[("bookId", uuid()), ("displayedPrice", money())], &[]))),
        ], &[]),
        "OrderReceipt": object(&[("orderId", uuid()), ("studentId", uuid()), ("purchases", array(purchase)), ("total", money())], &[]),
        "StudentPurchases": object(&[
            ("studentId", uuid()),
            ("purchases", array(object(&[
                ("purchaseId", uuid()), ("orderId", nullable(uuid())), ("bookId", uuid()), ("title", string()),
                ("pricePaid", money()), ("purchasedAt", timestamp()),
            ], &[]))),
            ("totalSpent", money()),
        ], &[]),
        "CourseBuyers": object(&[
            ("courseId", uuid()),
            ("buyers", array(object(&[("studentId", uuid()), ("firstName", string()), ("lastName", string()), ("personalDataErased", boolean()), ("booksBought", integer())], &[]))),
        ], &[]),
        "PostAnnouncement": object(&[("title", string()), ("body", string()), ("idempotencyToken", uuid())], &["body"]),
        "AnnouncementCreated": object(&[("announcementId", uuid())], &[]),
        "Announcement": object(&[("announcementId", uuid()), ("courseId", uuid()), ("title", string()), ("body", string()), ("postedAt", timestamp()), ("position", integer())], &[]),
        "Retracted": object(&[("announcementId", uuid()), ("retracted", boolean())], &[]),
        "NewCapacity": object(&[("newCapacity", integer())], &[]),
        "CourseAggregate": object(&[
            ("courseId", uuid()), ("name", string()), ("description", string()), ("capacity", integer()),
            ("enrollmentCount", integer()), ("enrolledStudents", array(uuid())), ("version", nullable(integer())),
        ], &[]),
        "RebuildSummary": object(&[
            ("rebuilt", array(object(&[("name", string()), ("eventsApplied", integer()), ("checkpoint", nullable(integer())), ("durationMs", integer())], &[]))),
            ("failed", array(failure.clone())),
        ], &[]),
        "ProjectionStatus": object(&[
            ("role", json!({"type": "string", "enum": ["maintainer", "follower"]})),
            ("projections", array(object(&[
                ("name", string()), ("checkpoint", nullable(integer())), ("hasCheckpoint", boolean()),
                ("rebuilding", boolean()), ("failure", nullable(failure)),
            ], &[]))),
            ("rebuildsRunning", array(object(&[
                ("name", string()), ("eventsApplied", integer()), ("position", nullable(integer())),
                ("head", nullable(integer())), ("eventsPerSecond", json!({"type": "number"})),
            ], &[]))),
            ("rebuildsQueued", array(string())),
        ], &[]),
        "Checkpoints": {"type": "object", "additionalProperties": nullable(integer())},
        "Store": object(&[
            ("path", string()), ("eventCount", integer()), ("head", nullable(integer())), ("sizeOnDisk", integer()),
            ("projectionsSizeOnDisk", integer()), ("projectionFiles", integer()), ("projectionInstances", integer()),
            ("projections", array(object(&[
                ("name", string()), ("instances", integer()), ("sizeOnDisk", integer()), ("liveBytes", integer()), ("files", integer()),
            ], &[]))),
        ], &[]),
        "Deleted": object(&[("deleted", boolean())], &[]),
        "FeedEvent": feed_event,
    })
}

/// The OpenAPI document of the whole API.
#[must_use]
pub fn openapi_document() -> Value {
    let student = || path_param("studentId", uuid());
    let course = || path_param("courseId", uuid());
    let book = || path_param("bookId", uuid());
    let token = || path_param("tokenId", uuid());
    let ok = |name: &str| (200, Some(schema(name)));
    let list = |name: &str| (200, Some(listing(schema(name))));
    let made = |name: &str| (201, Some(schema(name)));
    let paths = json!({
        "/students": {
            "get": operation("Students", "A page of the students in id order, optionally by tier and whether they reached their course limit",
                paged(vec![query_param("tier", tier(), "only this tier (any case)"),
                     query_param("isMaxedOut", boolean(), "only students who reached (true) or did not reach (false) their limit")]),
                None, list("StudentShortInfo"), &[400, 503]),
            "post": operation("Students", "Register a student; the email must be unused (unique-username example)",
                vec![], Some("RegisterStudent"), made("StudentCreated"), &[400, 409]),
        },
        "/students/{studentId}": {
            "get": operation("Students", "A student with their courses", vec![student()], None, ok("StudentDetails"), &[400, 404, 503]),
        },
        "/students/{studentId}/forget": {
            "post": operation("Students", "Forget a student: erase their names and email from every event (crypto-shredding) and read model; the events stay and the chain stays intact. Again: alreadyForgotten is true",
                vec![student()], Some("ForgetStudent"), ok("StudentForgotten"), &[400, 404]),
        },
        "/students/{studentId}/subscription": {
            "patch": operation("Students", "Change a student's subscription tier", vec![student()], Some("Subscription"), ok("StudentDetails"), &[400, 404, 409]),
        },
        "/students/{studentId}/course-books": {
            "get": operation("Course books", "The books a student bought", vec![student()], None, ok("StudentPurchases"), &[400, 404, 503]),
        },
        "/courses": {
            "get": operation("Courses", "A page of the courses in id order, optionally only full or open ones",
                paged(vec![query_param("isFull", boolean(), "only full (true) or open (false) courses")]),
                None, list("CourseShortInfo"), &[400, 503]),
            "post": operation("Courses", "Create a course", vec![], Some("CreateCourse"), made("CourseCreated"), &[400]),
        },
        "/courses/{courseId}": {
            "get": operation("Courses", "A course with its students' names", vec![course()], None, ok("CourseDetails"), &[400, 404, 503]),
        },
        "/courses/{courseId}/student-limit": {
            "patch": operation("Courses", "Change a course's student limit (not below its enrolment)", vec![course()], Some("StudentLimit"), ok("CourseDetails"), &[400, 404, 409]),
        },
        "/courses/{courseId}/enrollments": {
            "post": operation("Enrollment", "Enrol a student: capacity, tier limit and no double enrolment, decided at once (course-subscriptions example)",
                vec![course()], Some("StudentRef"), made("Enrollment"), &[400, 404, 409]),
        },
        "/courses/{courseId}/announcements": {
            "get": operation("Announcements", "A page of a course's live announcements in id order (sort by position for posting order)",
                paged(vec![course()]), None, list("Announcement"), &[400, 404, 503]),
            "post": operation("Announcements", "Post an announcement once per idempotency token (prevent-record-duplication example)",
                vec![course()], Some("PostAnnouncement"), made("AnnouncementCreated"), &[400, 404, 409]),
        },
        "/courses/{courseId}/announcements/{announcementId}/retract": {
            "post": operation("Announcements", "Retract an announcement; its idempotency token may be used again",
                vec![course(), path_param("announcementId", uuid())], None, ok("Retracted"), &[400, 404, 409]),
        },
        "/courses/{courseId}/book-buyers": {
            "get": operation("Course books", "Who bought the course's books", vec![course()], None, ok("CourseBuyers"), &[400, 404, 503]),
        },
        "/invoices": {
            "get": operation("Invoices", "A page of the invoices in number order",
                paged(vec![query_param("customerId", uuid(), "only this customer's invoices")]), None, list("Invoice"), &[400, 503]),
            "post": operation("Invoices", "Create an invoice with the next gap-free number (invoice-number example)",
                vec![], Some("CreateInvoice"), made("InvoiceCreated"), &[400, 409]),
        },
        "/invoices/{invoiceNumber}": {
            "get": operation("Invoices", "One invoice", vec![path_param("invoiceNumber", integer())], None, ok("Invoice"), &[400, 404, 503]),
        },
        "/exams/{examId}/registration-tokens": {
            "post": operation("Exam registration", "Issue a single-use registration token to a student (opt-in-token example)",
                vec![path_param("examId", uuid())], Some("StudentRef"), made("ExamToken"), &[400, 404, 409]),
        },
        "/exam-registration-tokens/{tokenId}": {
            "get": operation("Exam registration", "A token's status", vec![token()], None, ok("ExamToken"), &[400, 404]),
        },
        "/exam-registration-tokens/{tokenId}/redeem": {
            "post": operation("Exam registration", "Redeem a token: once, by its student, unless revoked", vec![token()], Some("StudentRef"), ok("ExamToken"), &[400, 404, 409]),
        },
        "/exam-registration-tokens/{tokenId}/revoke": {
            "post": operation("Exam registration", "Revoke a token that was not used yet", vec![token()], None, ok("ExamToken"), &[400, 404, 409]),
        },
        "/course-books": {
            "get": operation("Course books", "A page of the book catalogue in id order",
                paged(vec![query_param("courseId", uuid(), "only this course's books")]), None, list("Book"), &[400, 503]),
            "post": operation("Course books", "Define a book for a course", vec![], Some("DefineBook"), made("BookCreated"), &[400, 404, 409]),
        },
        "/course-books/orders": {
            "post": operation("Course books", "Buy a cart of books in one decision: all or none (dynamic-product-price example, N projections)",
                vec![], Some("Order"), made("OrderReceipt"), &[400, 404, 409]),
        },
        "/course-books/{bookId}": {
            "get": operation("Course books", "One book", vec![book()], None, ok("Book"), &[400, 404, 503]),
        },
        "/course-books/{bookId}/price": {
            "patch": operation("Course books", "Change a book's price; the old one is honoured for 30 minutes", vec![book()], Some("NewPrice"), ok("Book"), &[400, 404, 409]),
        },
        "/course-books/{bookId}/purchases": {
            "post": operation("Course books", "Buy a book at the price shown (current, or replaced less than 30 minutes ago)",
                vec![book()], Some("Purchase"), made("PurchaseReceipt"), &[400, 404, 409]),
        },
        "/aggregate/courses": {
            "post": operation("Aggregate (event-sourced)", "Create a course through the aggregate", vec![], Some("CreateCourse"), made("CourseCreated"), &[400]),
        },
        "/aggregate/courses/{courseId}": {
            "get": operation("Aggregate (event-sourced)", "The course aggregate's state", vec![course()], None, ok("CourseAggregate"), &[400, 404]),
        },
        "/aggregate/courses/{courseId}/capacity": {
            "patch": operation("Aggregate (event-sourced)", "Change the capacity: tag-scoped condition after the loaded version, bounded retries",
                vec![course()], Some("NewCapacity"), ok("CourseAggregate"), &[400, 404, 409]),
        },
        "/aggregate/courses/{courseId}/subscriptions": {
            "post": operation("Aggregate (event-sourced)", "Enrol a student through the aggregate (capacity and duplicates only)",
                vec![course()], Some("StudentRef"), made("CourseAggregate"), &[400, 404, 409]),
        },
        "/admin/projections/rebuild": {
            "post": operation("Admin", "Rebuild every projection from the log", vec![], None, ok("RebuildSummary"), &[409]),
        },
        "/admin/projections/{name}/rebuild": {
            "post": operation("Admin", "Rebuild one projection", vec![path_param("name", string())], None, ok("RebuildSummary"), &[404, 409]),
        },
        "/admin/projections/status": {
            "get": operation("Admin", "Projection checkpoints, failures and running rebuilds", vec![], None, ok("ProjectionStatus"), &[]),
        },
        "/admin/projections/checkpoints": {
            "get": operation("Admin", "Every projection's checkpoint", vec![], None, ok("Checkpoints"), &[]),
        },
        "/events/stream": {
            "get": live_feed(),
        },
        "/admin/store": {
            "get": operation("Admin", "Store figures", vec![], None, ok("Store"), &[]),
            "delete": operation("Admin", "Delete the store and its read models, and start afresh; needs confirm=true",
                vec![query_param("confirm", boolean(), "must be true")], None, ok("Deleted"), &[400, 409]),
        },
    });
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Opossum course management",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The Opossum sample: all seven DCB examples (dcb.events/examples) over HTTP, on an event store in a local folder. Errors are application/problem+json.",
        },
        "paths": paths,
        "components": {"schemas": schemas()},
    })
}
