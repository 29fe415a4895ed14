//! Paged list routes: following `nextCursor` with a small limit returns every item exactly
//! once, filters and paging work together, and a bad limit or cursor is a 400 problem.

use std::collections::BTreeSet;

use serde_json::json;

use crate::course_books::book;
use crate::support::{Server, items, text, texts};

/// `ids`, checked to hold no duplicate, as a set.
#[track_caller]
fn once(ids: Vec<String>) -> BTreeSet<String> {
    let set: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(set.len(), ids.len(), "an item came twice: {ids:?}");
    set
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_through_students_returns_each_exactly_once_with_and_without_filters() {
    let Some(server) = Server::start().await else {
        return;
    };
    let mut everyone = BTreeSet::new();
    let mut masters = BTreeSet::new();
    for i in 0..7 {
        let id = server.student(&format!("Student{i}"), "Paged").await;
        if i % 3 == 0 {
            server
                .patch(
                    &format!("/students/{id}/subscription"),
                    json!({"enrollmentTier": "Master"}),
                )
                .await
                .expect(200);
            masters.insert(id.clone());
        }
        everyone.insert(id);
    }

    for (limit, pages) in [(1, 7), (2, 4), (3, 3), (7, 1), (50, 1)] {
        let (found, taken) = server.every_page("/students", limit).await;
        assert_eq!(taken, pages, "limit {limit}");
        let ids = texts(&found, "studentId");
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted, "pages follow one order: the id");
        assert_eq!(once(ids), everyone, "limit {limit}");
    }
    let (found, pages) = server.every_page("/students?tier=master", 2).await;
    assert_eq!(pages, 2);
    assert_eq!(once(texts(&found, "studentId")), masters);
    let (found, _) = server
        .every_page("/students?tier=basic&isMaxedOut=false", 2)
        .await;
    let basic: BTreeSet<String> = everyone.difference(&masters).cloned().collect();
    assert_eq!(once(texts(&found, "studentId")), basic);
    assert!(found.iter().all(|s| s["enrollmentTier"] == "Basic"));

    // The page that holds the last item has no cursor, even when it is full.
    let last = server.get("/students?limit=7").await.expect(200);
    assert_eq!(items(&last).len(), 7);
    assert_eq!(last["nextCursor"], json!(null));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoices_page_in_number_order_past_ten() {
    let Some(server) = Server::start().await else {
        return;
    };
    // An invoice's customer is a registered student.
    let acme = server.student("Acme", "Corp").await;
    let other = server.student("Other", "Ltd").await;
    let (acme, other) = (acme.as_str(), other.as_str());
    for i in 0..12 {
        let customer = if i % 2 == 0 { acme } else { other };
        server
            .post(
                "/invoices",
                json!({"customerId": customer, "amount": 10 + i}),
            )
            .await
            .expect(201);
    }
    let numbers = |found: &[serde_json::Value]| -> Vec<u64> {
        found
            .iter()
            .map(|i| i["invoiceNumber"].as_u64().unwrap())
            .collect()
    };
    let (found, pages) = server.every_page("/invoices", 5).await;
    assert_eq!(pages, 3);
    assert_eq!(numbers(&found), (1..=12).collect::<Vec<u64>>());
    let (found, _) = server
        .every_page(&format!("/invoices?customerId={acme}"), 4)
        .await;
    assert_eq!(numbers(&found), [1, 3, 5, 7, 9, 11]);
    // The key of invoice 10 does not sort between 1 and 2.
    assert_eq!(
        server.get("/invoices/10").await.expect(200)["invoiceNumber"],
        10
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_list_route_pages_with_its_filters() {
    let Some(server) = Server::start().await else {
        return;
    };
    let small = server.course("Small", 1).await;
    let mut courses = BTreeSet::from([small.clone()]);
    for i in 0..4 {
        courses.insert(server.course(&format!("Course {i}"), 10).await);
    }
    let ada = server.student("Ada", "Lovelace").await;
    server.enroll(&small, &ada).await.expect(201);

    let (found, pages) = server.every_page("/courses", 2).await;
    assert_eq!(pages, 3);
    assert_eq!(once(texts(&found, "courseId")), courses);
    let (full, _) = server.every_page("/courses?isFull=true", 1).await;
    assert_eq!(texts(&full, "courseId"), std::slice::from_ref(&small));
    let (open, _) = server.every_page("/courses?isFull=false", 1).await;
    assert_eq!(open.len(), 4);
    assert!(!texts(&open, "courseId").contains(&small));

    let other = courses.iter().find(|c| **c != small).unwrap().clone();
    let mut small_books = BTreeSet::new();
    let mut all_books = BTreeSet::new();
    for i in 0..5 {
        let course = if i < 3 { &small } else { &other };
        let id = book(&server, course, &format!("Book {i}"), 10.0).await;
        if course == &small {
            small_books.insert(id.clone());
        }
        all_books.insert(id);
    }
    let (found, _) = server.every_page("/course-books", 2).await;
    assert_eq!(once(texts(&found, "bookId")), all_books);
    let (found, pages) = server
        .every_page(&format!("/course-books?courseId={small}"), 2)
        .await;
    assert_eq!(pages, 2);
    assert_eq!(once(texts(&found, "bookId")), small_books);

    let mut posted = Vec::new();
    for i in 0..5 {
        let reply = server
            .post(
                &format!("/courses/{small}/announcements"),
                json!({"title": format!("Note {i}"), "idempotencyToken": format!("00000000-0000-4000-8000-00000000b00{i}")}),
            )
            .await
            .expect(201);
        posted.push(text(&reply, "announcementId"));
    }
    let (found, pages) = server
        .every_page(&format!("/courses/{small}/announcements"), 2)
        .await;
    assert_eq!(pages, 3);
    assert_eq!(once(texts(&found, "announcementId")), once(posted));
    // Another course's list is paged on its own.
    let (none, pages) = server
        .every_page(&format!("/courses/{other}/announcements"), 2)
        .await;
    assert!(none.is_empty());
    assert_eq!(pages, 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn students_added_while_paging_never_repeat_one() {
    let Some(server) = Server::start().await else {
        return;
    };
    let mut before = BTreeSet::new();
    for i in 0..6 {
        before.insert(server.student(&format!("Early{i}"), "Student").await);
    }
    let first = server.get("/students?limit=2").await.expect(200);
    let mut seen = texts(&items(&first), "studentId");
    let mut cursor = first["nextCursor"].as_str().unwrap().to_owned();
    for i in 0..4 {
        server.student(&format!("Late{i}"), "Student").await;
    }
    loop {
        let page = server
            .get(&format!("/students?limit=2&cursor={cursor}"))
            .await
            .expect(200);
        seen.extend(texts(&items(&page), "studentId"));
        match page["nextCursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    let seen = once(seen);
    assert!(
        before.is_subset(&seen),
        "every student that existed throughout is listed"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_limit_or_cursor_is_a_400_problem_on_every_list_route() {
    let Some(server) = Server::start().await else {
        return;
    };
    let course = server.course("Rust", 10).await;
    let routes = [
        "/students".to_owned(),
        "/students?tier=basic".to_owned(),
        "/courses".to_owned(),
        "/courses?isFull=false".to_owned(),
        "/invoices".to_owned(),
        "/course-books".to_owned(),
        format!("/course-books?courseId={course}"),
        format!("/courses/{course}/announcements"),
    ];
    for route in &routes {
        let separator = if route.contains('?') { '&' } else { '?' };
        for limit in ["0", "501", "-1", "many", "2.5"] {
            let detail = server
                .get(&format!("{route}{separator}limit={limit}"))
                .await
                .problem(400);
            assert!(
                detail.contains("limit must be a whole number from 1 to 500"),
                "{route} limit={limit}: {detail}"
            );
        }
        for cursor in ["zz", "abc", "not%20a%20cursor", "ff"] {
            let detail = server
                .get(&format!("{route}{separator}cursor={cursor}"))
                .await
                .problem(400);
            assert!(
                detail.contains("cursor is not one a page returned"),
                "{route} cursor={cursor}: {detail}"
            );
        }
        for fine in ["limit=1", "limit=500", "limit=", "cursor="] {
            let page = server
                .get(&format!("{route}{separator}{fine}"))
                .await
                .expect(200);
            items(&page);
        }
    }
    server.stop().await;
}
