//! Exam registration tokens: the "opt-in token" example. The server issues a single-use token
//! to a student; the token can be redeemed once, or revoked. No table of valid tokens exists:
//! the events tagged with the token *are* the registry, folded into one status.

mod commands;
mod events;
mod routes;
mod status;

pub use commands::{
    ExamTokenCommands, GetExamToken, IssueExamToken, RedeemExamToken, RevokeExamToken,
};
pub use events::{
    ExamRegistrationTokenIssued, ExamRegistrationTokenRedeemed, ExamRegistrationTokenRevoked,
};
pub use routes::{RouteMessages, routes};
pub use status::{ExamToken, TokenStatus, token_status};

use opossum::OpossumBuilder;

use crate::store::Writer;

/// Registers the token handlers.
pub fn register(builder: OpossumBuilder) -> OpossumBuilder {
    let commands = |app: &opossum::AppContext| Writer::from_context(app).map(ExamTokenCommands);
    builder
        .handler_with::<IssueExamToken, _, _>(commands)
        .handler_with::<RedeemExamToken, _, _>(commands)
        .handler_with::<RevokeExamToken, _, _>(commands)
        .handler_with::<GetExamToken, _, _>(commands)
}
