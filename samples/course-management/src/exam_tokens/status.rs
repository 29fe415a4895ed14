//! A token's status, folded from the events tagged with it.

use opossum::{DecisionProjection, DomainEvent, EventStoreError};
use serde::Serialize;
use uuid::Uuid;

use super::{
    ExamRegistrationTokenIssued, ExamRegistrationTokenRedeemed, ExamRegistrationTokenRevoked,
};
use crate::store::query;
use crate::tags::EXAM_TOKEN;

/// Where a token is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub enum TokenStatus {
    /// No such token was ever issued.
    NotIssued,
    /// Issued, not used yet.
    Issued,
    /// Withdrawn.
    Revoked,
    /// Used.
    Redeemed,
}

/// A token's status with what it was issued for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExamToken {
    /// The token.
    pub token_id: Uuid,
    /// Its status.
    pub status: TokenStatus,
    /// The exam (nil while not issued).
    pub exam_id: Uuid,
    /// The student it was issued to (nil while not issued).
    pub student_id: Uuid,
}

/// The token's status. One enum state rather than "was issued" and "was redeemed" flags, so
/// revocation is simply a third state.
///
/// # Errors
/// Never for a valid id; the signature carries the query's validation.
pub fn token_status(token_id: Uuid) -> Result<DecisionProjection<ExamToken>, EventStoreError> {
    let events = query(
        &[
            ExamRegistrationTokenIssued::EVENT_TYPE,
            ExamRegistrationTokenRevoked::EVENT_TYPE,
            ExamRegistrationTokenRedeemed::EVENT_TYPE,
        ],
        &[(EXAM_TOKEN, &token_id)],
    )?;
    let initial = ExamToken {
        token_id,
        status: TokenStatus::NotIssued,
        exam_id: Uuid::nil(),
        student_id: Uuid::nil(),
    };
    Ok(DecisionProjection::try_new(
        initial,
        events,
        |token: ExamToken, event| {
            Ok(if event.is::<ExamRegistrationTokenIssued>() {
                let issued = event.decode::<ExamRegistrationTokenIssued>()?;
                ExamToken {
                    status: TokenStatus::Issued,
                    exam_id: issued.exam_id,
                    student_id: issued.student_id,
                    ..token
                }
            } else if event.is::<ExamRegistrationTokenRevoked>() {
                ExamToken {
                    status: TokenStatus::Revoked,
                    ..token
                }
            } else {
                ExamToken {
                    status: TokenStatus::Redeemed,
                    ..token
                }
            })
        },
    ))
}
