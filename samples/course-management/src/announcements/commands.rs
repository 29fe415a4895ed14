//! Posting an announcement once per idempotency token, and retracting it.

use opossum::{
    Decision, DecisionProjection, DomainEvent, EventStoreError, Handler, Message, decide_with,
};
use uuid::Uuid;

use super::{AnnouncementPosted, AnnouncementRetracted};
use crate::courses::course_exists;
use crate::error::{AppError, AppResult, MAX_BODY, MAX_NAME, optional_body, required_line};
use crate::store::{Writer, query, retry_policy};
use crate::tags::{ANNOUNCEMENT_ID, COURSE_ID, IDEMPOTENCY};

/// Post an announcement to a course, once per idempotency token.
#[derive(Clone, Debug)]
pub struct PostAnnouncement {
    /// The course.
    pub course_id: Uuid,
    /// Title.
    pub title: String,
    /// Text.
    pub body: String,
    /// The client's token for this submission.
    pub idempotency_token: Uuid,
}

impl Message for PostAnnouncement {
    type Output = AppResult<Uuid>;
}

/// Retract an announcement of a course.
#[derive(Clone, Copy, Debug)]
pub struct RetractAnnouncement {
    /// The course.
    pub course_id: Uuid,
    /// The announcement.
    pub announcement_id: Uuid,
}

impl Message for RetractAnnouncement {
    type Output = AppResult<()>;
}

/// Is the token in use? Posted → used, retracted → free again. The query is only the token's
/// tag, so requests with different tokens have disjoint boundaries and never block each other.
///
/// # Errors
/// Never for a valid id; the signature carries the query's validation.
pub fn token_was_used(token: Uuid) -> Result<DecisionProjection<bool>, EventStoreError> {
    let events = query(
        &[
            AnnouncementPosted::EVENT_TYPE,
            AnnouncementRetracted::EVENT_TYPE,
        ],
        &[(IDEMPOTENCY, &token)],
    )?;
    Ok(DecisionProjection::new(false, events, |_, event| {
        event.is::<AnnouncementPosted>()
    }))
}

/// An announcement's course and token, and whether it was retracted; `None` until posted.
fn announcement(
    announcement_id: Uuid,
) -> Result<DecisionProjection<Option<(AnnouncementPosted, bool)>>, EventStoreError> {
    let events = query(
        &[
            AnnouncementPosted::EVENT_TYPE,
            AnnouncementRetracted::EVENT_TYPE,
        ],
        &[(ANNOUNCEMENT_ID, &announcement_id)],
    )?;
    Ok(DecisionProjection::try_new(None, events, |state, event| {
        Ok(if event.is::<AnnouncementPosted>() {
            Some((event.decode::<AnnouncementPosted>()?, false))
        } else {
            state.map(|(posted, _)| (posted, true))
        })
    }))
}

/// Handles the announcements' commands.
#[derive(Clone)]
pub struct AnnouncementCommands(pub Writer);

impl Handler<PostAnnouncement> for AnnouncementCommands {
    async fn handle(&self, command: PostAnnouncement) -> AppResult<Uuid> {
        let title = required_line("title", &command.title, MAX_NAME)?;
        let body = optional_body("body", &command.body, MAX_BODY)?;
        let writer = &self.0;
        let facts = (
            course_exists(command.course_id)?,
            token_was_used(command.idempotency_token)?,
        );
        let decided = decide_with(
            writer.store.as_ref(),
            retry_policy(),
            facts,
            |(course_exists, token_used)| -> AppResult<Decision<Uuid>> {
                if !course_exists {
                    return Err(AppError::not_found(format!(
                        "Course {} does not exist.",
                        command.course_id
                    )));
                }
                if token_used {
                    return Err(AppError::rule(format!(
                        "This announcement was already submitted with idempotency token {}; \
                         retract it first to post with this token again.",
                        command.idempotency_token
                    )));
                }
                let announcement_id = Uuid::new_v4();
                let event = writer
                    .event(&AnnouncementPosted {
                        announcement_id,
                        course_id: command.course_id,
                        title: title.clone(),
                        body: body.clone(),
                        idempotency_token: command.idempotency_token,
                    })
                    .tag(COURSE_ID, command.course_id.to_string())
                    .tag(ANNOUNCEMENT_ID, announcement_id.to_string())
                    .tag(IDEMPOTENCY, command.idempotency_token.to_string())
                    .build()?;
                Ok(Decision::append(vec![event]).returning(announcement_id))
            },
        )
        .await?;
        Ok(decided.outcome)
    }
}

impl Handler<RetractAnnouncement> for AnnouncementCommands {
    async fn handle(&self, command: RetractAnnouncement) -> AppResult<()> {
        let writer = &self.0;
        let announcement = announcement(command.announcement_id)?;
        decide_with(
            writer.store.as_ref(),
            retry_policy(),
            announcement,
            |announcement| -> AppResult<Decision> {
                let posted = match announcement {
                    Some((posted, _)) if posted.course_id != command.course_id => None,
                    other => other,
                };
                let Some((posted, retracted)) = posted else {
                    return Err(AppError::not_found(format!(
                        "Course {} has no announcement {}.",
                        command.course_id, command.announcement_id
                    )));
                };
                if retracted {
                    return Err(AppError::rule("The announcement is already retracted."));
                }
                // Carrying the idempotency tag is what frees the token: the token's projection
                // folds this event to "not used".
                let event = writer
                    .event(&AnnouncementRetracted {
                        announcement_id: command.announcement_id,
                        course_id: command.course_id,
                        idempotency_token: posted.idempotency_token,
                    })
                    .tag(COURSE_ID, command.course_id.to_string())
                    .tag(ANNOUNCEMENT_ID, command.announcement_id.to_string())
                    .tag(IDEMPOTENCY, posted.idempotency_token.to_string())
                    .build()?;
                Ok(Decision::append(vec![event]))
            },
        )
        .await?;
        Ok(())
    }
}
