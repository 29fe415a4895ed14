//! Course books: the dynamic-product-price example — the 30-minute grace period on the test
//! clock, and a cart of N books in one decision.

use std::time::Duration;

use serde_json::json;

use crate::support::{Server, items, text, texts};

pub(crate) async fn book(server: &Server, course: &str, title: &str, price: f64) -> String {
    let reply = server
        .post(
            "/course-books",
            json!({"courseId": course, "title": title, "author": "D. Knuth", "isbn": "978-0201896831", "price": price}),
        )
        .await
        .expect(201);
    text(&reply, "bookId")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_old_price_is_honoured_for_thirty_minutes() {
    let Some(server) = Server::start().await else {
        return;
    };
    let course = server.course("Algorithms", 30).await;
    let ada = server.student("Ada", "Lovelace").await;
    let taocp = book(&server, &course, "The Art of Computer Programming", 20.0).await;
    let buy = |price: f64| {
        server.post(
            &format!("/course-books/{taocp}/purchases"),
            json!({"studentId": ada, "displayedPrice": price}),
        )
    };

    buy(20.0).await.expect(201);
    let wrong = buy(19.0).await.problem(400);
    assert!(wrong.contains("is 20.00, not 19.00"), "{wrong}");

    let changed = server
        .patch(
            &format!("/course-books/{taocp}/price"),
            json!({"newPrice": 25}),
        )
        .await
        .expect(200);
    assert_eq!(changed["price"], 25);
    assert_eq!(changed["previousPrice"], 20);

    server.clock.advance(Duration::from_secs(29 * 60));
    buy(20.0).await.expect(201);
    buy(25.0).await.expect(201);

    server.clock.advance(Duration::from_secs(2 * 60));
    let expired = buy(20.0).await.problem(400);
    assert!(expired.contains("is 25.00, not 20.00"), "{expired}");
    buy(25.0).await.expect(201);

    let bought = server
        .get(&format!("/students/{ada}/course-books"))
        .await
        .expect(200);
    let paid: Vec<f64> = bought["purchases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pricePaid"].as_f64().unwrap())
        .collect();
    assert_eq!(paid, [20.0, 20.0, 25.0, 25.0]);
    assert_eq!(bought["totalSpent"], 90);
    assert_eq!(
        bought["purchases"][0]["title"],
        "The Art of Computer Programming"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cart_is_bought_whole_or_not_at_all() {
    let Some(server) = Server::start().await else {
        return;
    };
    let algorithms = server.course("Algorithms", 30).await;
    let databases = server.course("Databases", 30).await;
    let ada = server.student("Ada", "Lovelace").await;
    let alan = server.student("Alan", "Turing").await;
    let a = book(&server, &algorithms, "Introduction to Algorithms", 80.0).await;
    let b = book(&server, &algorithms, "Algorithm Design", 60.5).await;
    let c = book(&server, &databases, "Database Internals", 45.0).await;

    let catalogue = items(&server.get("/course-books").await.expect(200));
    assert_eq!(catalogue.len(), 3);
    let mut of_course = texts(
        &items(
            &server
                .get(&format!("/course-books?courseId={algorithms}"))
                .await
                .expect(200),
        ),
        "bookId",
    );
    of_course.sort();
    let mut expected = [a.clone(), b.clone()];
    expected.sort();
    assert_eq!(of_course, expected);

    let refused = server
        .post(
            "/course-books/orders",
            json!({"studentId": ada, "items": [
                {"bookId": a, "displayedPrice": 80},
                {"bookId": b, "displayedPrice": 60},
                {"bookId": c, "displayedPrice": 45},
            ]}),
        )
        .await
        .problem(400);
    assert!(refused.contains("Algorithm Design"), "{refused}");
    let nothing = server
        .get(&format!("/students/{ada}/course-books"))
        .await
        .expect(200);
    assert_eq!(
        nothing["purchases"],
        json!([]),
        "no book of a refused cart is bought"
    );

    let receipt = server
        .post(
            "/course-books/orders",
            json!({"studentId": ada, "items": [
                {"bookId": a, "displayedPrice": 80},
                {"bookId": b, "displayedPrice": 60.5},
                {"bookId": c, "displayedPrice": 45},
            ]}),
        )
        .await
        .expect(201);
    assert_eq!(receipt["purchases"].as_array().unwrap().len(), 3);
    assert_eq!(receipt["total"], 185.5);
    server
        .post(
            &format!("/course-books/{c}/purchases"),
            json!({"studentId": alan, "displayedPrice": 45}),
        )
        .await
        .expect(201);

    let bought = server
        .get(&format!("/students/{ada}/course-books"))
        .await
        .expect(200);
    assert_eq!(bought["purchases"].as_array().unwrap().len(), 3);
    let order = text(&receipt, "orderId");
    assert!(
        bought["purchases"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["orderId"] == order.as_str())
    );

    let buyers = server
        .get(&format!("/courses/{databases}/book-buyers"))
        .await
        .expect(200);
    let names: Vec<&str> = buyers["buyers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["firstName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Ada", "Alan"]);
    let algo_buyers = server
        .get(&format!("/courses/{algorithms}/book-buyers"))
        .await
        .expect(200);
    assert_eq!(algo_buyers["buyers"][0]["booksBought"], 2);

    server
        .post(
            "/course-books/orders",
            json!({"studentId": ada, "items": [{"bookId": a, "displayedPrice": 80}, {"bookId": a, "displayedPrice": 80}]}),
        )
        .await
        .problem(400);
    server
        .post(
            "/course-books/orders",
            json!({"studentId": ada, "items": []}),
        )
        .await
        .problem(400);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn books_need_a_course_a_price_and_a_buyer() {
    let Some(server) = Server::start().await else {
        return;
    };
    let course = server.course("Algorithms", 30).await;
    let unknown = "00000000-0000-4000-8000-0000000000b0";
    server
        .post(
            "/course-books",
            json!({"courseId": unknown, "title": "X", "price": 10}),
        )
        .await
        .problem(404);
    server
        .post(
            "/course-books",
            json!({"courseId": course, "title": "X", "price": 0}),
        )
        .await
        .problem(400);
    let book = book(&server, &course, "SICP", 30.0).await;
    server
        .post(
            &format!("/course-books/{book}/purchases"),
            json!({"studentId": unknown, "displayedPrice": 30}),
        )
        .await
        .problem(404);
    server
        .post(
            &format!("/course-books/{unknown}/purchases"),
            json!({"studentId": unknown, "displayedPrice": 30}),
        )
        .await
        .problem(404);
    server
        .get(&format!("/course-books/{unknown}"))
        .await
        .problem(404);
    server
        .get(&format!("/students/{unknown}/course-books"))
        .await
        .problem(404);
    let none = server
        .get(&format!("/courses/{course}/book-buyers"))
        .await
        .expect(200);
    assert_eq!(none["buyers"], json!([]));
    server.stop().await;
}
