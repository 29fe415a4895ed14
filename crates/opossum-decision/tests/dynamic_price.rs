//! The DCB "dynamic product price" example: a cart is bought at the prices the customer saw,
//! and a price that changed less than a grace period ago is still honoured. One projection per
//! cart item (N projections of one state type), each reading a clock — a manual one here, so
//! the grace period is tested without sleeping.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use opossum_core::{DomainEvent, EventStore, InMemoryEventStore, NewEvent, Timestamp};
use opossum_decision::{
    Clock, DecisionProjection, Error, ManualClock, build_decision_model_many, execute_decision,
};
use opossum_testkit::{item, items_query};
use serde::{Deserialize, Serialize};

const GRACE: Duration = Duration::from_secs(30 * 60);

#[derive(Serialize, Deserialize)]
struct PriceSet {
    cents: u32,
}
impl DomainEvent for PriceSet {
    const EVENT_TYPE: &'static str = "PriceSet";
}

#[derive(Serialize, Deserialize)]
struct CartPurchased {}
impl DomainEvent for CartPurchased {
    const EVENT_TYPE: &'static str = "CartPurchased";
}

/// The prices of one product a buyer may pay: the current one, and the previous one while the
/// change is within the grace period.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Prices {
    current: Option<u32>,
    in_grace: Option<u32>,
}

impl Prices {
    fn accepts(self, cents: u32) -> bool {
        self.current == Some(cents) || self.in_grace == Some(cents)
    }
}

fn prices(product: &str, clock: &ManualClock) -> DecisionProjection<Prices> {
    DecisionProjection::try_with_clock(
        Prices::default(),
        items_query([item(&["PriceSet"], &[("product", product)])]),
        clock.clone(),
        |prices: Prices, e, clock: &dyn Clock| {
            let changed_at = e.event.metadata().timestamp;
            Ok(Prices {
                current: Some(e.decode::<PriceSet>()?.cents),
                in_grace: prices.current.filter(|_| changed_at + GRACE > clock.now()),
            })
        },
    )
}

#[derive(Debug, PartialEq, Eq)]
enum Purchase {
    Bought,
    PriceNotValid { product: &'static str },
}

async fn buy(
    store: &InMemoryEventStore,
    clock: &ManualClock,
    cart: &[(&'static str, u32)],
) -> Result<Purchase, Error> {
    execute_decision(store, |store| async move {
        let projections = cart.iter().map(|(p, _)| prices(p, clock)).collect();
        let model = build_decision_model_many(store, projections).await?;
        for (&(product, seen), prices) in cart.iter().zip(&model.state) {
            if !prices.accepts(seen) {
                return Ok(Purchase::PriceNotValid { product });
            }
        }
        let event = cart
            .iter()
            .fold(NewEvent::from_typed(&CartPurchased {}), |b, (p, _)| {
                b.tag("product", *p)
            })
            .build()?;
        model.append(store, vec![event]).await?;
        Ok(Purchase::Bought)
    })
    .await
}

fn price(product: &str, cents: u32, at: Timestamp) -> NewEvent {
    NewEvent::from_typed(&PriceSet { cents })
        .tag("product", product)
        .timestamp(at)
        .build()
        .unwrap()
}

fn noon() -> Timestamp {
    Timestamp::from_second(1_767_268_800).unwrap()
}

async fn catalogue() -> InMemoryEventStore {
    let store = InMemoryEventStore::new();
    let morning = noon() - Duration::from_secs(3 * 3600);
    store
        .append(
            vec![
                price("book", 2_000, morning),
                price("pen", 300, morning),
                price("lamp", 4_500, morning),
            ],
            None,
        )
        .await
        .unwrap();
    // The book got more expensive at noon.
    store
        .append(vec![price("book", 2_500, noon())], None)
        .await
        .unwrap();
    store
}

#[tokio::test]
async fn an_old_price_is_honoured_within_the_grace_period() {
    let store = catalogue().await;
    let clock = ManualClock::new(noon() + Duration::from_secs(10 * 60));
    let cart = [("book", 2_000), ("pen", 300)];
    assert_eq!(buy(&store, &clock, &cart).await.unwrap(), Purchase::Bought);
    assert_eq!(store.len(), 5);
}

#[tokio::test]
async fn an_old_price_is_refused_after_the_grace_period() {
    let store = catalogue().await;
    let clock = ManualClock::new(noon() + Duration::from_secs(10 * 60));
    let cart = [("pen", 300), ("book", 2_000)];

    clock.advance(GRACE);
    assert_eq!(
        buy(&store, &clock, &cart).await.unwrap(),
        Purchase::PriceNotValid { product: "book" }
    );
    // The new price is fine, and so is every unchanged one.
    let cart = [("pen", 300), ("book", 2_500), ("lamp", 4_500)];
    assert_eq!(buy(&store, &clock, &cart).await.unwrap(), Purchase::Bought);
}

#[tokio::test]
async fn a_price_never_set_is_not_valid() {
    let store = catalogue().await;
    let clock = ManualClock::new(noon());
    assert_eq!(
        buy(&store, &clock, &[("pen", 300), ("mug", 800)])
            .await
            .unwrap(),
        Purchase::PriceNotValid { product: "mug" }
    );
    assert_eq!(store.len(), 4);
}

#[tokio::test]
async fn only_price_changes_of_products_in_the_cart_fail_the_purchase() {
    let store = catalogue().await;
    let clock = ManualClock::new(noon());
    let cart = ["book", "pen"];
    let projections = cart.iter().map(|p| prices(p, &clock)).collect();
    let model = build_decision_model_many(&store, projections)
        .await
        .unwrap();
    assert_eq!(model.state.len(), 2);
    assert_eq!(model.state[1].current, Some(300));

    // A product outside the cart changes price: the purchase still goes through.
    store
        .append(vec![price("lamp", 5_000, noon())], None)
        .await
        .unwrap();
    let purchase = NewEvent::from_typed(&CartPurchased {}).build().unwrap();
    store
        .append(vec![purchase.clone()], Some(model.condition().clone()))
        .await
        .unwrap();

    // A product in the cart changes price: the same condition now fails.
    store
        .append(vec![price("pen", 350, noon())], None)
        .await
        .unwrap();
    let err = store
        .append(vec![purchase], Some(model.condition().clone()))
        .await
        .unwrap_err();
    assert!(err.is_condition_failed());
}
