//! Invoices: the invoice-number example — consecutive numbers, no gaps, under concurrency.

use serde_json::json;

use crate::support::{Server, concurrently, items};

fn numbers(page: &serde_json::Value) -> Vec<u64> {
    items(page)
        .iter()
        .map(|i| i["invoiceNumber"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoices_are_numbered_one_two_three() {
    let Some(server) = Server::start().await else {
        return;
    };
    // An invoice's customer is a registered student.
    let acme = server.student("Acme", "Corp").await;
    let other = server.student("Other", "Ltd").await;
    let (acme, other) = (acme.as_str(), other.as_str());
    for (expected, customer, amount) in [(1, acme, 99.5), (2, other, 10.0), (3, acme, 0.99)] {
        let reply = server
            .post(
                "/invoices",
                json!({"customerId": customer, "amount": amount}),
            )
            .await;
        assert_eq!(
            reply.location.as_deref(),
            Some(format!("/invoices/{expected}").as_str())
        );
        assert_eq!(reply.expect(201), json!({"invoiceNumber": expected}));
    }
    let all = server.get("/invoices").await.expect(200);
    assert_eq!(numbers(&all), [1, 2, 3]);
    assert_eq!(all["items"][0]["amount"], 99.5);
    let second = server.get("/invoices/2").await.expect(200);
    assert_eq!(second["customerId"], other);
    assert_eq!(
        numbers(
            &server
                .get(&format!("/invoices?customerId={acme}"))
                .await
                .expect(200)
        ),
        [1, 3]
    );

    server.get("/invoices/9").await.problem(404);
    for amount in [json!(0), json!(-5), json!(1.005), json!("12")] {
        server
            .post("/invoices", json!({"customerId": acme, "amount": amount}))
            .await
            .problem(400);
    }
    assert_eq!(
        numbers(&server.get("/invoices").await.expect(200)),
        [1, 2, 3],
        "refusals use no number"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_invoices_get_distinct_gap_free_numbers() {
    let Some(server) = Server::start().await else {
        return;
    };
    let customer = server.student("Parallel", "Customer").await;
    let replies = concurrently(20, |i| {
        server.post(
            "/invoices",
            json!({"customerId": customer, "amount": 10 + i}),
        )
    })
    .await;
    let mut granted = Vec::new();
    for reply in replies {
        match reply.status {
            201 => granted.push(reply.body["invoiceNumber"].as_u64().unwrap()),
            // Every retry met another invoice: nothing was written, the client may resend.
            409 => {}
            _ => panic!("unexpected reply: {reply:?}"),
        }
    }
    granted.sort_unstable();
    assert!(!granted.is_empty());
    let expected: Vec<u64> = (1..=granted.len() as u64).collect();
    assert_eq!(granted, expected, "distinct and without gaps");
    assert_eq!(
        numbers(&server.get("/invoices").await.expect(200)),
        expected
    );
    server.stop().await;
}
