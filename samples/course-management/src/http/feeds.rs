//! The live feeds open on the store. An open feed holds the store (it reads from it until the
//! client goes away), and neither deleting the store nor a graceful shutdown can finish while
//! one does: both first end every feed, here, and wait until they have let go of it.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use opossum::AppStore;
use tokio::sync::watch;

/// Why the server ended the open feeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeedEnded {
    /// The store was deleted and recreated: positions start again at 1.
    StoreDeleted,
    /// The server is shutting down.
    ShuttingDown,
}

impl FeedEnded {
    /// What a client is told.
    #[must_use]
    pub fn reason(self) -> &'static str {
        match self {
            FeedEnded::StoreDeleted => {
                "the store was deleted and recreated; positions start again at 1, so reconnect \
                 without Last-Event-ID"
            }
            FeedEnded::ShuttingDown => "the server is shutting down",
        }
    }
}

/// How long deleting the store waits for the open feeds to let go of it. Feeds end as soon as
/// their connection's task runs, so this only bounds a task that never runs again.
const LET_GO_WITHIN: Duration = Duration::from_secs(5);

/// Every open feed: a signal that ends them, and how many still hold the store.
pub(crate) struct Feeds {
    ends: watch::Sender<Ends>,
    open: Arc<watch::Sender<usize>>,
}

/// The last end of the feeds: feeds opened before `round` changed end.
#[derive(Clone, Copy, Debug)]
struct Ends {
    round: u64,
    why: Option<FeedEnded>,
}

impl Feeds {
    pub(crate) fn new() -> Feeds {
        Feeds {
            ends: watch::Sender::new(Ends {
                round: 0,
                why: None,
            }),
            open: Arc::new(watch::Sender::new(0)),
        }
    }

    /// A feed's hold on `store`, and the future that says when the server ends it; `None` once
    /// the server is shutting down.
    pub(crate) fn open(&self, store: Arc<AppStore>) -> Option<(FeedStore, FeedEnd)> {
        // Counted before the round is read: an end that comes in between is seen by the feed.
        self.open.send_modify(|n| *n += 1);
        let held = FeedStore {
            store,
            _open: OpenFeed(Arc::clone(&self.open)),
        };
        let now = *self.ends.borrow();
        if now.why == Some(FeedEnded::ShuttingDown) {
            return None;
        }
        let end = FeedEnd {
            ends: self.ends.subscribe(),
            round: now.round,
        };
        Some((held, end))
    }

    /// Ends every open feed, and waits until they have let go of the store (at most
    /// [`LET_GO_WITHIN`]).
    pub(crate) async fn end_all(&self, why: FeedEnded) {
        self.ends.send_modify(|ends| {
            ends.round = ends.round.wrapping_add(1);
            ends.why = Some(why);
        });
        let mut open = self.open.subscribe();
        let let_go = tokio::time::timeout(LET_GO_WITHIN, open.wait_for(|n| *n == 0)).await;
        if let_go.is_err() {
            tracing::warn!(
                open = *self.open.borrow(),
                "live feeds still hold the store after being ended"
            );
        }
    }

    /// Ends the open feeds for a shutdown, and refuses new ones.
    pub(crate) fn shut(&self) {
        self.ends.send_modify(|ends| {
            ends.round = ends.round.wrapping_add(1);
            ends.why = Some(FeedEnded::ShuttingDown);
        });
    }
}

/// A live feed's hold on the store (a feed only reads): its waiting for appends is woken by this
/// process's commits at once and by other processes' through the store's change detection
/// (file-change notifications, or PostgreSQL's notifications). Dropping it lets go.
pub struct FeedStore {
    store: Arc<AppStore>,
    _open: OpenFeed,
}

impl Deref for FeedStore {
    type Target = AppStore;

    fn deref(&self) -> &AppStore {
        &self.store
    }
}

/// Counts one open feed until dropped.
struct OpenFeed(Arc<watch::Sender<usize>>);

impl Drop for OpenFeed {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Resolves when the server ends the feed it was given with.
pub struct FeedEnd {
    ends: watch::Receiver<Ends>,
    round: u64,
}

impl FeedEnd {
    /// Waits until the server ends the feed, and says why.
    pub async fn ended(mut self) -> FeedEnded {
        let round = self.round;
        match self.ends.wait_for(|ends| ends.round != round).await {
            Ok(ends) => ends.why.unwrap_or(FeedEnded::ShuttingDown),
            // The server's state is gone: so is the server.
            Err(_) => FeedEnded::ShuttingDown,
        }
    }
}
