//! Registering a student (unique email), changing a student's tier, and forgetting a student
//! (erasure of their personal data by crypto-shredding).

use opossum::{
    AppContext, AppendCondition, Decision, DomainEvent, EventStore, Handler, Message,
    ProjectionManager, Query, QueryItem, decide_with,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{
    STUDENT_DETAILS, STUDENT_SHORT_INFO, StudentRegistered, StudentSubscriptionUpdated, Tier,
};
use crate::course_books::COURSE_BOOK_BUYERS;
use crate::courses::COURSE_DETAILS;
use crate::enrollment::student_limit;
use crate::error::{
    AppError, AppResult, MAX_EMAIL, MAX_NAME, MAX_PERSON_NAME, quote, required_line,
};
use crate::store::{Writer, query, retry_policy, tag};
use crate::tags::{STUDENT_EMAIL, STUDENT_EMAIL_HASH, STUDENT_ID};

/// The read models that copy a student's personal data (names, email). Forgetting a student
/// rebuilds them, so that the copies go — from their states and from the files that hold
/// their earlier versions.
pub const PERSONAL_READ_MODELS: &[&str] = &[
    STUDENT_SHORT_INFO,
    STUDENT_DETAILS,
    COURSE_DETAILS,
    COURSE_BOOK_BUYERS,
];

/// Register a new student. The email must not be registered yet (in any case).
#[derive(Clone, Debug)]
pub struct RegisterStudent {
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Email address.
    pub email: String,
}

impl Message for RegisterStudent {
    type Output = AppResult<Uuid>;
}

/// Move a student to another subscription tier. The current tier again is a no-op that
/// succeeds (idempotent); a tier that allows fewer courses than the student takes is refused.
#[derive(Clone, Debug)]
pub struct UpdateSubscription {
    /// The student.
    pub student_id: Uuid,
    /// The new tier.
    pub tier: Tier,
}

impl Message for UpdateSubscription {
    type Output = AppResult<()>;
}

/// Forget a student: erase their personal data (names and email) from every event and read
/// model, by destroying their key. The events stay, and the store's chain stays intact.
#[derive(Clone, Debug)]
pub struct ForgetStudent {
    /// The student.
    pub student_id: Uuid,
    /// Why (for example the reference of the erasure request): 1 to 200 characters, stored in
    /// the `SubjectForgotten` event and its metadata field `reason`.
    pub reason: String,
    /// Who asked for it: 1 to 200 characters, the event's `user_id`.
    pub requested_by: String,
}

impl Message for ForgetStudent {
    type Output = AppResult<StudentForgotten>;
}

/// What forgetting a student did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StudentForgotten {
    /// The student.
    pub student_id: Uuid,
    /// The position of the student's `SubjectForgotten` event.
    pub position: u64,
    /// True when the student had been forgotten before: no new event was appended, and the
    /// position is the first forget's.
    pub already_forgotten: bool,
}

/// Handles the students' commands.
#[derive(Clone)]
pub struct StudentCommands(pub Writer);

impl Handler<RegisterStudent> for StudentCommands {
    async fn handle(&self, command: RegisterStudent) -> AppResult<Uuid> {
        let first_name = required("firstName", &command.first_name)?;
        let last_name = required("lastName", &command.last_name)?;
        let email = valid_email(&command.email)?;
        let key = email.to_lowercase();
        let hash = email_hash(&email);

        let student_id = Uuid::new_v4();
        let event = self
            .0
            .event(&StudentRegistered {
                student_id,
                first_name,
                last_name,
                email: email.clone(),
            })
            .tag(STUDENT_ID, student_id.to_string())
            .tag(STUDENT_EMAIL_HASH, &hash)
            .build()?;
        // The unique-username example: no read, no decision model — the append fails if any
        // event ever carried this email's hash (or, in a store from before the hash, the
        // email itself), in this process or any other. The tag is not personal data that a
        // forget erases, so an address stays taken after its student was forgotten.
        let unique = AppendCondition::new(Query::from_items([
            QueryItem::of_tags([tag(STUDENT_EMAIL_HASH, &hash)?]),
            QueryItem::of_tags([tag(STUDENT_EMAIL, &key)?]),
        ])?);
        match self.0.store.append(vec![event], Some(unique)).await {
            Ok(_) => Ok(student_id),
            Err(e) if e.is_condition_failed() => Err(AppError::rule(format!(
                "A student with email {email} is already registered."
            ))),
            Err(e) => Err(e.into()),
        }
    }
}

impl Handler<UpdateSubscription> for StudentCommands {
    async fn handle(&self, command: UpdateSubscription) -> AppResult<()> {
        let writer = &self.0;
        // The tier and the courses taken: a tier that allows fewer courses than the student
        // takes is refused, as a course's limit cannot drop below its enrolment. A concurrent
        // enrolment of this student fails the append, and the decision runs again.
        let limit = student_limit(command.student_id)?;
        decide_with(
            writer.store.as_ref(),
            retry_policy(),
            limit,
            |limit| -> AppResult<Decision> {
                let Some(limit) = limit else {
                    return Err(AppError::not_found(format!(
                        "Student {} does not exist.",
                        command.student_id
                    )));
                };
                if limit.tier == command.tier {
                    return Ok(Decision::nothing());
                }
                if limit.courses > command.tier.max_courses() {
                    return Err(AppError::rule(format!(
                        "The student is enrolled in {} courses; the {} tier allows {}.",
                        limit.courses,
                        command.tier,
                        command.tier.max_courses()
                    )));
                }
                let event = writer
                    .event(&StudentSubscriptionUpdated {
                        student_id: command.student_id,
                        enrollment_tier: command.tier,
                    })
                    .tag(STUDENT_ID, command.student_id.to_string())
                    .build()?;
                Ok(Decision::append(vec![event]))
            },
        )
        .await?;
        Ok(())
    }
}

/// Forgets students: appends the `SubjectForgotten` event, destroys the key, and rebuilds the
/// read models that copied the student's personal data.
#[derive(Clone)]
pub struct StudentEraser {
    writer: Writer,
    projections: ProjectionManager,
}

impl StudentEraser {
    /// The store, clock and projections of the app being built.
    ///
    /// # Errors
    /// Never; the signature fits `OpossumBuilder::handler_with`.
    pub fn from_context(app: &AppContext) -> Result<StudentEraser, opossum::Error> {
        Ok(StudentEraser {
            writer: Writer::from_context(app)?,
            projections: app.projections().clone(),
        })
    }

    /// Rebuilds [`PERSONAL_READ_MODELS`] from the log, whose events of a forgotten student now
    /// read as erased. The students' read models also forget by themselves, on the
    /// `SubjectForgotten` event, but only a rebuild reaches the course read models (an
    /// instance per course, not per student) and replaces the projection files, which keep
    /// earlier versions of every instance until they are compacted.
    ///
    /// A failure is logged, not returned: the erasure itself is done (the key is destroyed),
    /// and `POST /admin/projections/rebuild`, or forgetting the student again, finishes it. A
    /// process that follows another one cannot rebuild; the maintaining process's students
    /// read models forget on the event, its course read models at their next rebuild.
    async fn purge_read_models(&self, student_id: Uuid) {
        let registered = self.projections.projections();
        let names: Vec<&str> = PERSONAL_READ_MODELS
            .iter()
            .copied()
            .filter(|name| registered.iter().any(|r| r == name))
            .collect();
        match self.projections.rebuilder().rebuild_many(&names).await {
            Ok(report) => {
                for failed in &report.failed {
                    tracing::warn!(
                        %student_id,
                        projection = %failed.name,
                        reason = %failed.reason,
                        "a read model could not be rebuilt after a forget: it may still hold the \
                         student's personal data until it is rebuilt"
                    );
                }
            }
            Err(e) => tracing::warn!(
                %student_id,
                error = %e,
                "the read models could not be rebuilt after a forget: they may still hold the \
                 student's personal data until they are rebuilt"
            ),
        }
    }
}

impl Handler<ForgetStudent> for StudentEraser {
    async fn handle(&self, command: ForgetStudent) -> AppResult<StudentForgotten> {
        let reason = required_line("reason", &command.reason, MAX_FORGET_TEXT)?;
        let requested_by = required_line("requestedBy", &command.requested_by, MAX_FORGET_TEXT)?;
        let student_id = command.student_id;
        let registration = query(
            &[StudentRegistered::EVENT_TYPE],
            &[(STUDENT_ID, &student_id)],
        )?;
        if self.writer.store.read_last(&registration).await?.is_none() {
            return Err(AppError::not_found(format!(
                "Student {student_id} does not exist."
            )));
        }
        let mut metadata = self.writer.metadata();
        metadata.user_id = Some(requested_by);
        let forgotten = self
            .writer
            .store
            .forget(&student_id.to_string(), &reason, metadata)
            .await?;
        self.purge_read_models(student_id).await;
        Ok(StudentForgotten {
            student_id,
            position: forgotten.position.get(),
            already_forgotten: forgotten.already,
        })
    }
}

/// The longest `reason` and `requestedBy` of a forget.
pub const MAX_FORGET_TEXT: usize = MAX_NAME;

/// The unique-username tag value of `email`: the lowercase hex SHA-256 of the trimmed,
/// lower-cased address (see [`STUDENT_EMAIL_HASH`]).
#[must_use]
pub fn email_hash(email: &str) -> String {
    let digest = Sha256::digest(email.trim().to_lowercase().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A trimmed, non-empty name of at most [`MAX_PERSON_NAME`] characters.
fn required(field: &str, value: &str) -> AppResult<String> {
    required_line(field, value, MAX_PERSON_NAME)
}

/// A plausible email address: one `@`, something before it, a dotted domain after it.
fn valid_email(email: &str) -> AppResult<String> {
    let email = email.trim();
    let plausible = match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !email.chars().any(|c| c.is_whitespace() || c.is_control())
                && email.chars().count() <= MAX_EMAIL
        }
        None => false,
    };
    if plausible {
        Ok(email.to_owned())
    } else {
        Err(AppError::invalid(format!(
            "email {} is not an email address.",
            quote(email)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_email_hash_is_the_sha256_of_the_lower_cased_address() {
        // `printf %s ada@example.com | sha256sum`
        assert_eq!(
            email_hash(" ADA@Example.com "),
            "b5fc85e55755f9e0d030a10ab4429b6b2944855f9a0d60077fe832becbc41d72"
        );
    }

    #[test]
    fn emails_are_checked() {
        for good in ["ada@example.com", " a.b+c@d.e.org "] {
            assert!(valid_email(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "a@b",
            "a b@c.d",
            "a@b@c.d",
            "a@.d",
        ] {
            assert!(valid_email(bad).is_err(), "{bad}");
        }
    }
}
