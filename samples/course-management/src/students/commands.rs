//! Registering a student (unique email) and changing a student's tier.

use opossum::{AppendCondition, Decision, EventStore, Handler, Message, Query, decide_with};
use uuid::Uuid;

use super::{StudentRegistered, StudentSubscriptionUpdated, Tier, current_tier};
use crate::error::{AppError, AppResult};
use crate::store::{Writer, retry_policy, tag};
use crate::tags::{STUDENT_EMAIL, STUDENT_ID};

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

/// Move a student to another subscription tier.
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

/// Handles the students' commands.
#[derive(Clone)]
pub struct StudentCommands(pub Writer);

impl Handler<RegisterStudent> for StudentCommands {
    async fn handle(&self, command: RegisterStudent) -> AppResult<Uuid> {
        let first_name = required("firstName", &command.first_name)?;
        let last_name = required("lastName", &command.last_name)?;
        let email = valid_email(&command.email)?;
        let key = email.to_lowercase();

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
            .tag(STUDENT_EMAIL, &key)
            .build()?;
        // The unique-username example: no read, no decision model — the append fails if any
        // event ever carried this email, in this process or any other.
        let unique = AppendCondition::new(Query::from_tags([tag(STUDENT_EMAIL, &key)?])?);
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
        let tier = current_tier(command.student_id)?;
        decide_with(
            writer.store.as_ref(),
            retry_policy(),
            tier,
            |tier| -> AppResult<Decision> {
                let Some(tier) = tier else {
                    return Err(AppError::not_found(format!(
                        "Student {} does not exist.",
                        command.student_id
                    )));
                };
                if tier == command.tier {
                    return Ok(Decision::nothing());
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

/// A trimmed, non-empty field of at most 100 characters.
fn required(field: &str, value: &str) -> AppResult<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(AppError::invalid(format!("{field} must not be empty.")));
    }
    if value.chars().count() > 100 {
        return Err(AppError::invalid(format!(
            "{field} is longer than 100 characters."
        )));
    }
    Ok(value.to_owned())
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
                && email.len() <= 254
        }
        None => false,
    };
    if plausible {
        Ok(email.to_owned())
    } else {
        Err(AppError::invalid(format!(
            "{email:?} is not an email address."
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
