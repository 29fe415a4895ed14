//! `course-management seed`: realistic data through the application's own commands — every
//! event passes the same decisions and append conditions as one sent over HTTP, and nothing is
//! ever written to the folder by hand.
//!
//! Commands run concurrently (a bounded number in flight), so the store's group commit turns
//! many appends into few syncs; invoices are created in batches, each one atomic append of
//! consecutive numbers.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use opossum::{DomainEvent, EventStore, Mediator, OpossumApp, Query, ReadOptions};
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::announcements::{PostAnnouncement, RetractAnnouncement};
use crate::course_books::{ChangeBookPrice, DefineCourseBook, OrderBooks, OrderItem, PurchaseBook};
use crate::courses::CreateCourse;
use crate::enrollment::EnrollStudent;
use crate::error::{AppError, AppResult};
use crate::exam_tokens::{IssueExamToken, RedeemExamToken, RevokeExamToken};
use crate::invoices::{NewInvoice, create_invoices};
use crate::money::Money;
use crate::store::Writer;
use crate::students::{RegisterStudent, StudentRegistered, Tier, UpdateSubscription};

/// How much data to create.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Size {
    /// A few hundred events.
    Small,
    /// A few thousand events.
    Medium,
    /// Some tens of thousands of events.
    Large,
}

/// How many of each thing a size creates.
#[derive(Clone, Copy, Debug)]
struct Plan {
    students: usize,
    courses: usize,
    invoices: usize,
    books: usize,
    price_changes: usize,
    purchases: usize,
    orders: usize,
    announcements: usize,
    retractions: usize,
    tokens: usize,
}

impl Plan {
    fn of(size: Size) -> Plan {
        let base = Plan {
            students: 40,
            courses: 10,
            invoices: 30,
            books: 15,
            price_changes: 5,
            purchases: 30,
            orders: 10,
            announcements: 15,
            retractions: 3,
            tokens: 20,
        };
        let factor = match size {
            Size::Small => 1,
            Size::Medium => 10,
            Size::Large => 100,
        };
        Plan {
            students: base.students * factor,
            courses: base.courses * factor,
            invoices: base.invoices * factor,
            books: base.books * factor,
            price_changes: base.price_changes * factor,
            purchases: base.purchases * factor,
            orders: base.orders * factor,
            announcements: base.announcements * factor,
            retractions: base.retractions * factor,
            tokens: base.tokens * factor,
        }
    }
}

/// Commands in flight at once: enough for group commit to pay off, few enough that
/// decisions on the same course rarely collide.
const IN_FLIGHT: usize = 16;

/// Invoices per atomic batch.
const INVOICE_BATCH: usize = 100;

/// What a seed run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeedReport {
    /// Events appended.
    pub events: u64,
    /// Commands accepted, by kind.
    pub accepted: Vec<(&'static str, usize)>,
    /// Commands a business rule refused (a full course, a tier limit): realistic, and counted.
    pub refused: usize,
    /// How long it took.
    pub elapsed: Duration,
}

impl SeedReport {
    /// One line per kind: "40 students, 10 courses, …".
    #[must_use]
    pub fn summary(&self) -> String {
        self.accepted
            .iter()
            .map(|(what, n)| format!("{n} {what}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A small deterministic generator (xorshift64*): the same size gives the same shape of data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n.max(1) as u64)).unwrap_or(0)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const FIRST_NAMES: [&str; 32] = [
    "Ada",
    "Alan",
    "Barbara",
    "Brian",
    "Carla",
    "Dennis",
    "Edsger",
    "Frances",
    "Grace",
    "Hedy",
    "Ivan",
    "Joan",
    "Ken",
    "Katherine",
    "Linus",
    "Margaret",
    "Niklaus",
    "Olga",
    "Peter",
    "Radia",
    "Shafi",
    "Tim",
    "Ursula",
    "Vint",
    "Wendy",
    "Xiaoyun",
    "Yukihiro",
    "Zora",
    "Anita",
    "Bjarne",
    "Donald",
    "Sophie",
];

const LAST_NAMES: [&str; 32] = [
    "Lovelace",
    "Turing",
    "Liskov",
    "Kernighan",
    "Hopper",
    "Ritchie",
    "Dijkstra",
    "Allen",
    "Lamarr",
    "Sutherland",
    "Clarke",
    "Thompson",
    "Johnson",
    "Torvalds",
    "Hamilton",
    "Wirth",
    "Taussky",
    "Naur",
    "Perlman",
    "Goldwasser",
    "Berners-Lee",
    "Le Guin",
    "Cerf",
    "Hall",
    "Wang",
    "Matsumoto",
    "Neale",
    "Borg",
    "Stroustrup",
    "Knuth",
    "Wilson",
    "Shaw",
];

const SUBJECTS: [&str; 24] = [
    "Algorithms",
    "Databases",
    "Operating Systems",
    "Compilers",
    "Networks",
    "Cryptography",
    "Distributed Systems",
    "Linear Algebra",
    "Statistics",
    "Machine Learning",
    "Rust Programming",
    "Event Sourcing",
    "Software Testing",
    "Computer Graphics",
    "Formal Methods",
    "Human-Computer Interaction",
    "Information Retrieval",
    "Embedded Systems",
    "Numerical Methods",
    "Technical Writing",
    "Project Management",
    "Accounting Basics",
    "Quality Management",
    "Data Protection Law",
];

const LEVELS: [&str; 5] = [
    "Introduction to",
    "Applied",
    "Advanced",
    "Seminar in",
    "Workshop:",
];

const BOOK_WORDS: [&str; 12] = [
    "Principles of",
    "A Practical Guide to",
    "The Art of",
    "Foundations of",
    "Patterns in",
    "Essentials of",
    "Understanding",
    "Mastering",
    "Notes on",
    "Elements of",
    "Exercises in",
    "A Field Guide to",
];

/// Runs `work` on every item with at most [`IN_FLIGHT`] at once, ticking `progress` once per
/// item, and returns the results in the items' order.
async fn each<T, R, F, Fut>(
    items: Vec<T>,
    progress: &ProgressBar,
    work: F,
) -> AppResult<Vec<AppResult<R>>>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = AppResult<R>> + Send + 'static,
{
    let work = Arc::new(work);
    let mut results: Vec<Option<AppResult<R>>> = Vec::with_capacity(items.len());
    results.resize_with(items.len(), || None);
    let mut pending = items.into_iter().enumerate();
    let mut running = JoinSet::new();
    loop {
        while running.len() < IN_FLIGHT {
            let Some((index, item)) = pending.next() else {
                break;
            };
            let work = Arc::clone(&work);
            running.spawn(async move { (index, work(item).await) });
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        let (index, result) =
            joined.map_err(|e| AppError::Unavailable(format!("a seed task failed: {e}")))?;
        progress.inc(1);
        results[index] = Some(result);
    }
    Ok(results.into_iter().flatten().collect())
}

/// Splits results into successes, counting business-rule refusals and failing on anything
/// else (a broken store is not realistic data).
fn accepted<R>(results: Vec<AppResult<R>>, refused: &mut usize) -> AppResult<Vec<Option<R>>> {
    results
        .into_iter()
        .map(|r| match r {
            Ok(value) => Ok(Some(value)),
            Err(AppError::Rule(_) | AppError::NotFound(_)) => {
                *refused += 1;
                Ok(None)
            }
            Err(e) if e.is_condition_failed() => {
                *refused += 1;
                Ok(None)
            }
            Err(e) => Err(e),
        })
        .collect()
}

fn send<M, T>(
    mediator: &Mediator,
) -> impl Fn(M) -> std::pin::Pin<Box<dyn Future<Output = AppResult<T>> + Send>> + Send + Sync + 'static
where
    M: opossum::Message<Output = AppResult<T>>,
    T: Send + 'static,
{
    let mediator = mediator.clone();
    move |message| {
        let mediator = mediator.clone();
        Box::pin(async move { mediator.send(message).await? })
    }
}

/// Starts a phase of the seed on `progress`: its own name and length, counted from 0, after a
/// line that keeps the previous phase's count above the bar.
fn phase(progress: &ProgressBar, name: &'static str, len: usize) {
    let previous = progress.message();
    if !previous.is_empty() {
        progress.println(format!(
            "  {previous:<20} {}/{}",
            progress.position(),
            progress.length().unwrap_or(0)
        ));
    }
    progress.set_message(name);
    progress.set_length(len as u64);
    progress.set_position(0);
    progress.reset_eta();
}

/// Fills the app's store. `progress` shows one phase at a time (its message names the phase,
/// its length is the phase's number of commands) and is ticked once per command.
///
/// # Errors
/// Anything but a business-rule refusal: a store or projection failure.
pub async fn seed(app: &OpossumApp, size: Size, progress: &ProgressBar) -> AppResult<SeedReport> {
    let started = Instant::now();
    let plan = Plan::of(size);
    let mediator = app.mediator().clone();
    let store = Arc::clone(app.store());
    let head = |events: Option<opossum::SequencedEvent>| events.map_or(0, |e| e.position.get());
    let before = head(store.read_last(&Query::all()).await?);
    let existing = store
        .read(
            &Query::from_event_types([StudentRegistered::EVENT_TYPE])?,
            ReadOptions::new(),
        )
        .await?
        .len();
    let mut rng = Rng((0x5EED_CAFE_u64 ^ before) | 1);
    let mut refused = 0;
    let mut report = Vec::new();

    // Students, then their tiers.
    phase(progress, "students", plan.students);
    let registrations: Vec<RegisterStudent> = (0..plan.students)
        .map(|i| {
            let first = *rng.pick(&FIRST_NAMES);
            let last = *rng.pick(&LAST_NAMES);
            let email = format!(
                "{}.{}.{}@example.edu",
                first.to_lowercase(),
                last.to_lowercase().replace([' ', '-'], ""),
                existing + i + 1
            );
            RegisterStudent {
                first_name: first.to_owned(),
                last_name: last.to_owned(),
                email,
            }
        })
        .collect();
    let students: Vec<Uuid> = accepted(
        each(registrations, progress, send(&mediator)).await?,
        &mut refused,
    )?
    .into_iter()
    .flatten()
    .collect();
    report.push(("students", students.len()));

    let tiers: Vec<(Uuid, Tier)> = students
        .iter()
        .map(|&s| {
            let roll = rng.below(100);
            let tier = match roll {
                0..40 => Tier::Basic,
                40..75 => Tier::Standard,
                75..93 => Tier::Professional,
                _ => Tier::Master,
            };
            (s, tier)
        })
        .collect();
    let upgrades: Vec<UpdateSubscription> = tiers
        .iter()
        .map(|&(student_id, tier)| UpdateSubscription { student_id, tier })
        .collect();
    phase(progress, "subscription tiers", upgrades.len());
    accepted(
        each(upgrades, progress, send(&mediator)).await?,
        &mut refused,
    )?;

    // Courses.
    phase(progress, "courses", plan.courses);
    let course_commands: Vec<CreateCourse> = (0..plan.courses)
        .map(|i| {
            let subject = SUBJECTS[i % SUBJECTS.len()];
            let level = *rng.pick(&LEVELS);
            CreateCourse {
                name: format!("{level} {subject} {}", 101 + i / SUBJECTS.len()),
                description: format!("{level} {subject}: lectures, exercises and a final exam."),
                max_student_count: u32::try_from(8 + rng.below(40)).unwrap_or(20),
            }
        })
        .collect();
    let courses: Vec<Uuid> = accepted(
        each(course_commands, progress, send(&mediator)).await?,
        &mut refused,
    )?
    .into_iter()
    .flatten()
    .collect();
    report.push(("courses", courses.len()));
    if courses.is_empty() || students.is_empty() {
        return Err(AppError::Unavailable(
            "the seed created no course or no student".to_owned(),
        ));
    }

    // Enrolments: each student tries a few courses, up to about their tier's limit; full
    // courses and reached limits refuse some, as they would in real life.
    let mut enrolments = Vec::new();
    for &(student_id, tier) in &tiers {
        let wanted = 1 + rng.below(tier.max_courses().min(8) as usize);
        let mut chosen = Vec::new();
        for _ in 0..wanted {
            let course_id = *rng.pick(&courses);
            if !chosen.contains(&course_id) {
                chosen.push(course_id);
                enrolments.push(EnrollStudent {
                    course_id,
                    student_id,
                });
            }
        }
    }
    phase(progress, "enrolments", enrolments.len());
    let enrolled = accepted(
        each(enrolments, progress, send(&mediator)).await?,
        &mut refused,
    )?
    .into_iter()
    .flatten()
    .count();
    report.push(("enrolments", enrolled));

    // Invoices, in atomic batches of consecutive numbers.
    phase(progress, "invoices", plan.invoices);
    let writer = Writer {
        store: Arc::clone(&store),
        clock: app.clock(),
    };
    let invoices: Vec<NewInvoice> = (0..plan.invoices)
        .map(|_| NewInvoice {
            customer_id: *rng.pick(&students),
            amount: Money::from_cents(i64::try_from(5_000 + rng.below(95_000)).unwrap_or(9_900)),
        })
        .collect();
    for batch in invoices.chunks(INVOICE_BATCH) {
        create_invoices(&writer, batch).await?;
        progress.inc(batch.len() as u64);
    }
    report.push(("invoices", plan.invoices));

    // Books, price changes, purchases and cart orders.
    phase(progress, "course books", plan.books);
    let mut book_prices: Vec<Money> = Vec::new();
    let definitions: Vec<DefineCourseBook> = (0..plan.books)
        .map(|i| {
            let subject = SUBJECTS[i % SUBJECTS.len()];
            let price =
                Money::from_cents(i64::try_from(1_500 + rng.below(80) * 100 + 99).unwrap_or(2_999));
            book_prices.push(price);
            DefineCourseBook {
                course_id: *rng.pick(&courses),
                title: format!("{} {subject}", rng.pick(&BOOK_WORDS)),
                author: format!("{} {}", rng.pick(&FIRST_NAMES), rng.pick(&LAST_NAMES)),
                isbn: format!("978-{:010}", rng.next() % 10_000_000_000),
                price,
            }
        })
        .collect();
    let defined = accepted(
        each(definitions, progress, send(&mediator)).await?,
        &mut refused,
    )?;
    let mut books: Vec<(Uuid, Money)> = defined
        .into_iter()
        .zip(book_prices)
        .filter_map(|(id, price)| id.map(|id| (id, price)))
        .collect();
    report.push(("course books", books.len()));
    if books.is_empty() {
        return Err(AppError::Unavailable(
            "the seed created no course book".to_owned(),
        ));
    }

    let mut changes = Vec::new();
    let mut changed: HashMap<Uuid, Money> = HashMap::new();
    for _ in 0..plan.price_changes {
        let index = rng.below(books.len());
        let (book_id, price) = books[index];
        let new_price =
            Money::from_cents((price.cents() * (90 + rng.below(30) as i64) / 100).max(99));
        if changed.insert(book_id, new_price).is_none() {
            books[index].1 = new_price;
            changes.push(ChangeBookPrice { book_id, new_price });
        }
    }
    let changed_count = changes.len();
    phase(progress, "price changes", changed_count);
    accepted(
        each(changes, progress, send(&mediator)).await?,
        &mut refused,
    )?;
    report.push(("price changes", changed_count));

    phase(progress, "book purchases", plan.purchases + plan.orders);
    let purchases: Vec<PurchaseBook> = (0..plan.purchases)
        .map(|_| {
            let (book_id, displayed_price) = *rng.pick(&books);
            PurchaseBook {
                book_id,
                student_id: *rng.pick(&students),
                displayed_price,
            }
        })
        .collect();
    let bought = accepted(
        each(purchases, progress, send(&mediator)).await?,
        &mut refused,
    )?
    .into_iter()
    .flatten()
    .count();
    let orders: Vec<OrderBooks> = (0..plan.orders)
        .map(|_| {
            let mut items: Vec<OrderItem> = Vec::new();
            for _ in 0..2 + rng.below(3) {
                let (book_id, displayed_price) = *rng.pick(&books);
                if items.iter().all(|i| i.book_id != book_id) {
                    items.push(OrderItem {
                        book_id,
                        displayed_price,
                    });
                }
            }
            OrderBooks {
                student_id: *rng.pick(&students),
                items,
            }
        })
        .collect();
    let ordered = accepted(each(orders, progress, send(&mediator)).await?, &mut refused)?
        .into_iter()
        .flatten()
        .count();
    report.push(("book purchases", bought));
    report.push(("cart orders", ordered));

    // Announcements, some retracted.
    phase(
        progress,
        "announcements",
        plan.announcements + plan.retractions,
    );
    let posts: Vec<PostAnnouncement> = (0..plan.announcements)
        .map(|i| PostAnnouncement {
            course_id: *rng.pick(&courses),
            title: format!("Week {} notes", 1 + i % 14),
            body: "Slides and exercises are online; the lab starts ten minutes later.".to_owned(),
            idempotency_token: Uuid::new_v4(),
        })
        .collect();
    let course_of: Vec<Uuid> = posts.iter().map(|p| p.course_id).collect();
    let posted: Vec<(Uuid, Uuid)> =
        accepted(each(posts, progress, send(&mediator)).await?, &mut refused)?
            .into_iter()
            .zip(course_of)
            .filter_map(|(id, course_id)| id.map(|announcement_id| (course_id, announcement_id)))
            .collect();
    let retractions: Vec<RetractAnnouncement> = posted
        .iter()
        .take(plan.retractions)
        .map(|&(course_id, announcement_id)| RetractAnnouncement {
            course_id,
            announcement_id,
        })
        .collect();
    let retracted = accepted(
        each(retractions, progress, send(&mediator)).await?,
        &mut refused,
    )?
    .into_iter()
    .flatten()
    .count();
    report.push(("announcements", posted.len()));
    report.push(("retractions", retracted));

    // Exam registration tokens: issued, then about half redeemed and a fifth revoked.
    phase(progress, "exam tokens", plan.tokens);
    let exams: Vec<Uuid> = (0..(plan.tokens / 10).max(1))
        .map(|_| Uuid::new_v4())
        .collect();
    let issues: Vec<IssueExamToken> = (0..plan.tokens)
        .map(|_| IssueExamToken {
            exam_id: *rng.pick(&exams),
            student_id: *rng.pick(&students),
        })
        .collect();
    let tokens: Vec<_> = accepted(each(issues, progress, send(&mediator)).await?, &mut refused)?
        .into_iter()
        .flatten()
        .collect();
    let mut redeem = Vec::new();
    let mut revoke = Vec::new();
    for token in &tokens {
        match rng.below(10) {
            0..5 => redeem.push(RedeemExamToken {
                token_id: token.token_id,
                student_id: token.student_id,
            }),
            5..7 => revoke.push(RevokeExamToken {
                token_id: token.token_id,
            }),
            _ => {}
        }
    }
    phase(progress, "exam token uses", redeem.len() + revoke.len());
    let redeemed = accepted(each(redeem, progress, send(&mediator)).await?, &mut refused)?
        .into_iter()
        .flatten()
        .count();
    let revoked = accepted(each(revoke, progress, send(&mediator)).await?, &mut refused)?
        .into_iter()
        .flatten()
        .count();
    report.push(("exam tokens", tokens.len()));
    report.push(("redeemed", redeemed));
    report.push(("revoked", revoked));

    let after = head(store.read_last(&Query::all()).await?);
    Ok(SeedReport {
        events: after - before,
        accepted: report,
        refused,
        elapsed: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_grow_by_ten() {
        let (small, medium, large) = (
            Plan::of(Size::Small),
            Plan::of(Size::Medium),
            Plan::of(Size::Large),
        );
        assert_eq!(medium.students, small.students * 10);
        assert_eq!(large.students, small.students * 100);
    }

    #[test]
    fn the_generator_is_deterministic() {
        let (mut a, mut b) = (Rng(7), Rng(7));
        let first: Vec<usize> = (0..5).map(|_| a.below(100)).collect();
        let second: Vec<usize> = (0..5).map(|_| b.below(100)).collect();
        assert_eq!(first, second);
        assert!(first.iter().all(|&n| n < 100));
    }
}
