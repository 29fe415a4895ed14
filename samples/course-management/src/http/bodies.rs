//! Request bodies that the routes of more than one feature take.

use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// The student a request is about.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"studentId": "6f1c2a7e-0b8d-4c2e-9d4f-5e1b9f302a7c"}))]
pub struct StudentRef {
    /// The student's id.
    pub student_id: Uuid,
}
