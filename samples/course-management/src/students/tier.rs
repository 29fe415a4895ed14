//! Subscription tiers and the course limit of each.

use serde::{Deserialize, Serialize};

/// A student's subscription tier, which limits how many courses they may take at once.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
pub enum Tier {
    /// Two courses. Every student starts here.
    #[default]
    Basic,
    /// Five courses.
    Standard,
    /// Ten courses.
    Professional,
    /// Twenty-five courses.
    Master,
}

impl Tier {
    /// Every tier, cheapest first.
    pub const ALL: [Tier; 4] = [
        Tier::Basic,
        Tier::Standard,
        Tier::Professional,
        Tier::Master,
    ];

    /// How many courses a student of this tier may be enrolled in.
    #[must_use]
    pub const fn max_courses(self) -> u32 {
        match self {
            Tier::Basic => 2,
            Tier::Standard => 5,
            Tier::Professional => 10,
            Tier::Master => 25,
        }
    }

    /// The tier's name, as in JSON.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Tier::Basic => "Basic",
            Tier::Standard => "Standard",
            Tier::Professional => "Professional",
            Tier::Master => "Master",
        }
    }

    /// The tier named `name`, in any case.
    #[must_use]
    pub fn parse(name: &str) -> Option<Tier> {
        Tier::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(name.trim()))
    }
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// "1 student", "2 students": for messages.
#[must_use]
pub fn students(count: u32) -> String {
    if count == 1 {
        "1 student".to_owned()
    } else {
        format!("{count} students")
    }
}
