//! A small in-process mediator: typed dispatch of commands and queries to their handlers.
//!
//! - A [`Message`] (a command or a query) names its output type.
//! - A [`Handler<M>`](Handler) handles one message type; its dependencies are its own fields,
//!   given when it is constructed. There is no service locator, no reflection and no naming
//!   convention: the compiler checks every handler against its message.
//! - Handlers are registered through [`MediatorBuilder`]; [`MediatorBuilder::build`] refuses
//!   two handlers for one message type, and — for the message types named with
//!   [`require`](MediatorBuilder::require) or [`require_all`](MediatorBuilder::require_all) —
//!   a missing handler, so that wiring mistakes surface at start-up.
//! - [`Mediator::send`] returns the handler's typed output, or a [`MediatorError`]: no handler
//!   registered, or the optional timeout elapsed.
//!
//! The mediator depends only on `opossum-core` (for [`ErrorKind`](opossum_core::ErrorKind));
//! handlers bring whatever they use.
//!
//! # Why completeness is checked at start-up, not at compile time
//!
//! [`Mediator::send`] is generic over the message type, and the set of handlers is built at run
//! time from values, so the type of a `Mediator` cannot say which messages it handles. Making
//! it say so would mean a mediator type parameterised by a type-level list of its messages,
//! which every handler's field and every function taking the mediator would have to spell out.
//! Requiring the message types once, where the application is wired, finds the same mistakes
//! before the first request, at the price of naming each message twice (once in its handler,
//! once in the list).
//!
//! # Example
//!
//! ```
//! use std::collections::HashSet;
//! use std::sync::{Arc, Mutex};
//! use opossum_mediator::{Handler, Mediator, Message};
//!
//! // A command and a query.
//! struct RegisterStudent { email: String }
//! impl Message for RegisterStudent { type Output = Result<(), String>; }
//!
//! struct CountStudents;
//! impl Message for CountStudents { type Output = usize; }
//!
//! // The dependency both handlers share, given to them when they are constructed.
//! type Emails = Arc<Mutex<HashSet<String>>>;
//!
//! struct RegisterStudentHandler { emails: Emails }
//! impl Handler<RegisterStudent> for RegisterStudentHandler {
//!     async fn handle(&self, command: RegisterStudent) -> Result<(), String> {
//!         let mut emails = self.emails.lock().map_err(|e| e.to_string())?;
//!         if emails.insert(command.email.clone()) {
//!             Ok(())
//!         } else {
//!             Err(format!("{} is already registered", command.email))
//!         }
//!     }
//! }
//!
//! struct CountStudentsHandler { emails: Emails }
//! impl Handler<CountStudents> for CountStudentsHandler {
//!     async fn handle(&self, _: CountStudents) -> usize {
//!         self.emails.lock().map_or(0, |e| e.len())
//!     }
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let emails = Emails::default();
//! let mediator = Mediator::builder()
//!     .handler(RegisterStudentHandler { emails: emails.clone() })
//!     .handler(CountStudentsHandler { emails })
//!     .build()?;
//!
//! let email = "ada@example.com".to_owned();
//! mediator.send(RegisterStudent { email: email.clone() }).await??;
//! assert!(mediator.send(RegisterStudent { email }).await?.is_err());
//! assert_eq!(mediator.send(CountStudents).await?, 1);
//! # Ok(())
//! # }
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(run())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! `send` returns `Result<M::Output, MediatorError>`: the outer result is the mediator's (was
//! the message handled?), the output — here itself a `Result` — is the handler's.

mod error;
mod handler;
mod mediator;

pub use error::MediatorError;
pub use handler::{Handler, Message};
pub use mediator::{Mediator, MediatorBuilder, MessageList};
