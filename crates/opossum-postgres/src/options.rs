//! [`PgOptions`]: where in the database the store lives and how it connects.

use std::time::Duration;

use opossum_core::RequiredMetadata;

use crate::Error;

/// The longest PostgreSQL identifier, in bytes.
const MAX_IDENTIFIER: usize = 63;

/// How a [`PgEventStore`](crate::PgEventStore) uses its database. Setters take and return the
/// options; each has a getter named `get_…`; [`PgOptions::validate`] reports every problem at
/// once.
///
/// ```
/// use std::time::Duration;
/// use opossum_postgres::PgOptions;
///
/// let options = PgOptions::new().schema("billing").pool_size(4);
/// assert!(options.validate().is_ok());
/// assert_eq!(options.get_schema(), "billing");
/// assert!(PgOptions::new().schema("Billing; DROP TABLE x").validate().is_err());
/// assert!(PgOptions::new().pool_size(0).validate().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgOptions {
    schema: String,
    pool_size: usize,
    poll_interval: Duration,
    connect_timeout: Duration,
    required_metadata: RequiredMetadata,
}

impl Default for PgOptions {
    fn default() -> PgOptions {
        PgOptions::new()
    }
}

impl PgOptions {
    /// The defaults: schema `opossum`, 8 connections, subscribers look for missed notifications
    /// every second, connections time out after 10 s.
    #[must_use]
    pub fn new() -> PgOptions {
        PgOptions {
            schema: "opossum".to_owned(),
            pool_size: 8,
            poll_interval: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(10),
            required_metadata: RequiredMetadata::none(),
        }
    }

    /// Metadata fields every appended event must carry (for example `user_id` and `reason`):
    /// an append in which any event lacks one fails with
    /// [`MissingMetadata`](opossum_core::Error::MissingMetadata) and writes nothing. Default:
    /// none.
    #[must_use]
    pub fn require_metadata(mut self, required: RequiredMetadata) -> PgOptions {
        self.required_metadata = required;
        self
    }

    /// The metadata fields every append must carry.
    #[must_use]
    pub fn get_required_metadata(&self) -> &RequiredMetadata {
        &self.required_metadata
    }

    /// The PostgreSQL schema that holds the store's tables, created on connect when missing:
    /// one store per schema, so several stores can share a database. Lowercase letters, digits
    /// and `_`, starting with a letter or `_`, at most 63 bytes. Default `opossum`.
    #[must_use]
    pub fn schema(mut self, schema: impl Into<String>) -> PgOptions {
        self.schema = schema.into();
        self
    }

    /// How many connections reads and appends share (the pool holds one more, so a group
    /// commit finds one while this many reads run; subscriptions use one more to listen for
    /// notifications). Default 8; between 1 and 1,000.
    #[must_use]
    pub fn pool_size(mut self, connections: usize) -> PgOptions {
        self.pool_size = connections;
        self
    }

    /// How often a waiting subscriber reads the head in case a notification was lost (for
    /// example while the listening connection reconnected). Default 1 s; between 1 ms and
    /// 1 hour.
    #[must_use]
    pub fn poll_interval(mut self, interval: Duration) -> PgOptions {
        self.poll_interval = interval;
        self
    }

    /// How long connecting may take before it fails. Default 10 s; between 1 ms and 1 hour.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> PgOptions {
        self.connect_timeout = timeout;
        self
    }

    /// See [`PgOptions::schema`].
    #[must_use]
    pub fn get_schema(&self) -> &str {
        &self.schema
    }

    /// See [`PgOptions::pool_size`].
    #[must_use]
    pub fn get_pool_size(&self) -> usize {
        self.pool_size
    }

    /// See [`PgOptions::poll_interval`].
    #[must_use]
    pub fn get_poll_interval(&self) -> Duration {
        self.poll_interval
    }

    /// See [`PgOptions::connect_timeout`].
    #[must_use]
    pub fn get_connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// Checks every option.
    ///
    /// # Errors
    /// [`Error::InvalidOptions`] listing every problem.
    pub fn validate(&self) -> Result<(), Error> {
        let mut problems = Vec::new();
        let s = &self.schema;
        let valid_start = s
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_');
        if !valid_start
            || s.len() > MAX_IDENTIFIER
            || !s
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            problems.push(format!(
                "schema {s:?} is not a plain identifier; use lowercase letters, digits and _, starting with a letter or _, at most 63 bytes"
            ));
        }
        if !(1..=1000).contains(&self.pool_size) {
            problems.push(format!(
                "pool_size {} is out of range; use between 1 and 1000",
                self.pool_size
            ));
        }
        for (name, value) in [
            ("poll_interval", self.poll_interval),
            ("connect_timeout", self.connect_timeout),
        ] {
            if value < Duration::from_millis(1) || value > Duration::from_secs(3600) {
                problems.push(format!(
                    "{name} {value:?} is out of range; use between 1 ms and 1 hour"
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidOptions { problems })
        }
    }
}
