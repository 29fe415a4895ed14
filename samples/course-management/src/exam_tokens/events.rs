//! The tokens' events, all tagged `examToken`.

use opossum::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A token was issued to a student for an exam. Tagged `examToken`, `examId`, `studentId`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExamRegistrationTokenIssued {
    /// The token.
    pub token_id: Uuid,
    /// The exam it registers for.
    pub exam_id: Uuid,
    /// The student it was issued to.
    pub student_id: Uuid,
}

impl DomainEvent for ExamRegistrationTokenIssued {
    const EVENT_TYPE: &'static str = "ExamRegistrationTokenIssued";
}

/// The student used the token: they are registered for the exam.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExamRegistrationTokenRedeemed {
    /// The token.
    pub token_id: Uuid,
    /// The exam.
    pub exam_id: Uuid,
    /// The student.
    pub student_id: Uuid,
}

impl DomainEvent for ExamRegistrationTokenRedeemed {
    const EVENT_TYPE: &'static str = "ExamRegistrationTokenRedeemed";
}

/// The token was withdrawn before use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExamRegistrationTokenRevoked {
    /// The token.
    pub token_id: Uuid,
    /// The exam.
    pub exam_id: Uuid,
}

impl DomainEvent for ExamRegistrationTokenRevoked {
    const EVENT_TYPE: &'static str = "ExamRegistrationTokenRevoked";
}
