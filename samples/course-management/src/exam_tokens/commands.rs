//! Issuing, redeeming and revoking tokens, and reading one.

use opossum::{Decision, Handler, Message, build_decision_model, decide_with};
use uuid::Uuid;

use super::{
    ExamRegistrationTokenIssued, ExamRegistrationTokenRedeemed, ExamRegistrationTokenRevoked,
    ExamToken, TokenStatus, token_status,
};
use crate::error::{AppError, AppResult};
use crate::store::{Writer, retry_policy};
use crate::students::registered;
use crate::tags::{EXAM_ID, EXAM_TOKEN, STUDENT_ID};

/// Issue a token for an exam to a registered student.
#[derive(Clone, Copy, Debug)]
pub struct IssueExamToken {
    /// The exam.
    pub exam_id: Uuid,
    /// The student.
    pub student_id: Uuid,
}

impl Message for IssueExamToken {
    type Output = AppResult<ExamToken>;
}

/// Redeem a token: only once, only by the student it was issued to, never after revocation.
#[derive(Clone, Copy, Debug)]
pub struct RedeemExamToken {
    /// The token.
    pub token_id: Uuid,
    /// The student presenting it.
    pub student_id: Uuid,
}

impl Message for RedeemExamToken {
    type Output = AppResult<ExamToken>;
}

/// Revoke a token that was not used yet.
#[derive(Clone, Copy, Debug)]
pub struct RevokeExamToken {
    /// The token.
    pub token_id: Uuid,
}

impl Message for RevokeExamToken {
    type Output = AppResult<ExamToken>;
}

/// A token's status, read from the store (the event store is the token registry).
#[derive(Clone, Copy, Debug)]
pub struct GetExamToken {
    /// The token.
    pub token_id: Uuid,
}

impl Message for GetExamToken {
    type Output = AppResult<ExamToken>;
}

/// Handles the token commands.
#[derive(Clone)]
pub struct ExamTokenCommands(pub Writer);

fn unknown(token_id: Uuid) -> AppError {
    AppError::not_found(format!("No exam registration token {token_id} was issued."))
}

impl Handler<IssueExamToken> for ExamTokenCommands {
    async fn handle(&self, command: IssueExamToken) -> AppResult<ExamToken> {
        let writer = &self.0;
        let student = registered(command.student_id)?;
        let decided = decide_with(
            writer.store.as_ref(),
            retry_policy(),
            student,
            |registered| -> AppResult<Decision<ExamToken>> {
                if !registered {
                    return Err(AppError::not_found(format!(
                        "Student {} does not exist.",
                        command.student_id
                    )));
                }
                let token_id = Uuid::new_v4();
                let event = writer
                    .event(&ExamRegistrationTokenIssued {
                        token_id,
                        exam_id: command.exam_id,
                        student_id: command.student_id,
                    })
                    .tag(EXAM_TOKEN, token_id.to_string())
                    .tag(EXAM_ID, command.exam_id.to_string())
                    .tag(STUDENT_ID, command.student_id.to_string())
                    .build()?;
                Ok(Decision::append(vec![event]).returning(ExamToken {
                    token_id,
                    status: TokenStatus::Issued,
                    exam_id: command.exam_id,
                    student_id: command.student_id,
                }))
            },
        )
        .await?;
        Ok(decided.outcome)
    }
}

impl Handler<RedeemExamToken> for ExamTokenCommands {
    async fn handle(&self, command: RedeemExamToken) -> AppResult<ExamToken> {
        let writer = &self.0;
        // Two redemptions of one token race: one appends; the other's condition fails, it
        // decides again, and finds the token redeemed.
        let status = token_status(command.token_id)?;
        let decided = decide_with(
            writer.store.as_ref(),
            retry_policy(),
            status,
            |token| -> AppResult<Decision<ExamToken>> {
                match token.status {
                    TokenStatus::NotIssued => return Err(unknown(command.token_id)),
                    TokenStatus::Revoked => {
                        return Err(AppError::rule("The token has been revoked."));
                    }
                    TokenStatus::Redeemed => {
                        return Err(AppError::rule("The token has already been used."));
                    }
                    TokenStatus::Issued if token.student_id != command.student_id => {
                        return Err(AppError::rule("The token was issued to another student."));
                    }
                    TokenStatus::Issued => {}
                }
                let event = writer
                    .event(&ExamRegistrationTokenRedeemed {
                        token_id: command.token_id,
                        exam_id: token.exam_id,
                        student_id: command.student_id,
                    })
                    .tag(EXAM_TOKEN, command.token_id.to_string())
                    .tag(EXAM_ID, token.exam_id.to_string())
                    .tag(STUDENT_ID, command.student_id.to_string())
                    .build()?;
                Ok(Decision::append(vec![event]).returning(ExamToken {
                    status: TokenStatus::Redeemed,
                    ..token
                }))
            },
        )
        .await?;
        Ok(decided.outcome)
    }
}

impl Handler<RevokeExamToken> for ExamTokenCommands {
    async fn handle(&self, command: RevokeExamToken) -> AppResult<ExamToken> {
        let writer = &self.0;
        let status = token_status(command.token_id)?;
        let decided = decide_with(
            writer.store.as_ref(),
            retry_policy(),
            status,
            |token| -> AppResult<Decision<ExamToken>> {
                match token.status {
                    TokenStatus::NotIssued => return Err(unknown(command.token_id)),
                    TokenStatus::Revoked => {
                        return Err(AppError::rule("The token is already revoked."));
                    }
                    TokenStatus::Redeemed => {
                        return Err(AppError::rule(
                            "The token has already been used; it can no longer be revoked.",
                        ));
                    }
                    TokenStatus::Issued => {}
                }
                let event = writer
                    .event(&ExamRegistrationTokenRevoked {
                        token_id: command.token_id,
                        exam_id: token.exam_id,
                    })
                    .tag(EXAM_TOKEN, command.token_id.to_string())
                    .tag(EXAM_ID, token.exam_id.to_string())
                    .build()?;
                Ok(Decision::append(vec![event]).returning(ExamToken {
                    status: TokenStatus::Revoked,
                    ..token
                }))
            },
        )
        .await?;
        Ok(decided.outcome)
    }
}

impl Handler<GetExamToken> for ExamTokenCommands {
    async fn handle(&self, query: GetExamToken) -> AppResult<ExamToken> {
        let model =
            build_decision_model(self.0.store.as_ref(), token_status(query.token_id)?).await?;
        match model.state.status {
            TokenStatus::NotIssued => Err(unknown(query.token_id)),
            _ => Ok(model.state),
        }
    }
}
