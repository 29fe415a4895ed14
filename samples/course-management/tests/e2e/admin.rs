//! Admin: rebuilds, status, checkpoints, and deleting the store.

use serde_json::json;

use crate::support::{Server, items};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuilding_every_projection_gives_the_same_read_models() {
    let Some(server) = Server::start().await else {
        return;
    };
    let course = server.course("Rust", 3).await;
    let ada = server.student("Ada", "Lovelace").await;
    server.enroll(&course, &ada).await.expect(201);
    server
        .post("/invoices", json!({"customerId": ada, "amount": 12}))
        .await
        .expect(201);
    let students_before = server.get("/students").await.expect(200);
    let course_before = server.get(&format!("/courses/{course}")).await.expect(200);
    server.rebuilds_settled().await;

    let summary = server
        .post("/admin/projections/rebuild", json!({}))
        .await
        .expect(200);
    assert_eq!(summary["rebuilt"].as_array().unwrap().len(), 9, "{summary}");
    assert_eq!(summary["failed"], json!([]));
    let one = server
        .post("/admin/projections/CourseDetails/rebuild", json!({}))
        .await
        .expect(200);
    assert_eq!(one["rebuilt"][0]["name"], "CourseDetails");
    assert_eq!(one["rebuilt"][0]["eventsApplied"], 2, "created + enrolled");
    server
        .post("/admin/projections/Nope/rebuild", json!({}))
        .await
        .problem(404);

    assert_eq!(server.get("/students").await.expect(200), students_before);
    assert_eq!(
        server.get(&format!("/courses/{course}")).await.expect(200),
        course_before
    );

    let store = server.get("/admin/store").await.expect(200);
    assert_eq!(store["eventCount"], 4);
    assert_projection_figures_add_up(&store);
    let instances = |name: &str| {
        store["projections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {store}"))["instances"]
            .clone()
    };
    assert_eq!(instances("StudentShortInfo"), 1);
    assert_eq!(instances("CourseDetails"), 1);
    assert_eq!(instances("Invoices"), 1);
    assert_eq!(instances("CourseAnnouncements"), 0);
    // Two student and two course projections, one invoice; no books, no announcements.
    assert_eq!(store["projectionInstances"], 2 + 2 + 1, "{store}");
    let checkpoints = server
        .get("/admin/projections/checkpoints")
        .await
        .expect(200);
    let checkpoints = checkpoints.as_object().unwrap();
    assert_eq!(checkpoints.len(), 9);
    assert!(
        checkpoints.values().all(|c| c == &store["head"]),
        "{checkpoints:?}"
    );
    let status = server.get("/admin/projections/status").await.expect(200);
    let projections = status["projections"].as_array().unwrap();
    assert_eq!(projections.len(), 9);
    assert!(
        projections
            .iter()
            .all(|p| p["failure"].is_null() && p["hasCheckpoint"] == true)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_store_needs_confirmation_and_starts_afresh() {
    let Some(server) = Server::start().await else {
        return;
    };
    let ada = server.student("Ada", "Lovelace").await;
    server
        .post("/invoices", json!({"customerId": ada, "amount": 5}))
        .await
        .expect(201);

    let refused = server.delete("/admin/store").await.problem(400);
    assert!(refused.contains("confirm=true"), "{refused}");
    server
        .delete("/admin/store?confirm=false")
        .await
        .problem(400);
    assert_eq!(items(&server.get("/students").await.expect(200)).len(), 1);

    if crate::POSTGRES {
        // A shared database is not one server's to delete: refused, and nothing lost.
        let refused = server
            .delete("/admin/store?confirm=true")
            .await
            .problem(405);
        assert!(refused.contains("folder store"), "{refused}");
        assert_eq!(items(&server.get("/students").await.expect(200)).len(), 1);
        server.stop().await;
        return;
    }
    assert_eq!(
        server.delete("/admin/store?confirm=true").await.expect(200),
        json!({"deleted": true})
    );
    assert_eq!(
        server.get("/students").await.expect(200),
        json!({"items": [], "nextCursor": null})
    );
    // The fresh store's daemon builds its projections' files in start-up rebuilds.
    server.rebuilds_settled().await;
    let store = server.get("/admin/store").await.expect(200);
    assert_eq!(store["eventCount"], 0);
    assert_projection_figures_add_up(&store);
    assert_eq!(store["projectionInstances"], 0, "{store}");

    // The fresh store works, and numbering starts again.
    let ada = server.student("Ada", "Lovelace").await;
    let invoice = server
        .post("/invoices", json!({"customerId": ada, "amount": 5}))
        .await
        .expect(201);
    assert_eq!(invoice["invoiceNumber"], 1);
    server.stop().await;
}

/// The store figures' projection totals are the sums of the per-projection figures, and every
/// projection is counted once, within the store folder's size.
#[track_caller]
fn assert_projection_figures_add_up(store: &serde_json::Value) {
    let projections = store["projections"].as_array().unwrap();
    assert_eq!(projections.len(), 9, "{store}");
    let sum = |field: &str| -> u64 {
        projections
            .iter()
            .map(|p| {
                p[field]
                    .as_u64()
                    .unwrap_or_else(|| panic!("no {field}: {p}"))
            })
            .sum()
    };
    assert_eq!(
        store["projectionsSizeOnDisk"].as_u64(),
        Some(sum("sizeOnDisk"))
    );
    assert_eq!(store["projectionFiles"].as_u64(), Some(sum("files")));
    assert_eq!(
        store["projectionInstances"].as_u64(),
        Some(sum("instances"))
    );
    assert!(sum("files") > 0, "{store}");
    assert!(
        sum("sizeOnDisk") <= store["sizeOnDisk"].as_u64().unwrap(),
        "the projections are part of the store folder: {store}"
    );
    for p in projections {
        assert!(p["liveBytes"].as_u64() <= p["sizeOnDisk"].as_u64(), "{p}");
    }
}
