//! [`Durability`]: when a write counts as done.

use serde::{Deserialize, Serialize};

/// When a write counts as done: once it is on stable storage, or once the operating system has
/// it.
///
/// The file store's appends and the projections' checkpoints both take one (each through a
/// `durability` option). In configuration files it is written `"immediate"` or `"eventual"`.
///
/// ```
/// use opossum_core::Durability;
///
/// assert_eq!(Durability::default(), Durability::Immediate);
/// assert!(Durability::Immediate.is_immediate());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Durability {
    /// A write returns only once it is on stable storage (`fdatasync`, `FlushFileBuffers`): a
    /// power cut right after loses nothing. The default.
    #[default]
    Immediate,
    /// A write returns once the operating system holds it in its page cache, and reaches the
    /// disk when the system writes it back (usually within seconds). A crash of the process
    /// loses nothing; a power cut may lose the latest writes, never a part of one.
    Eventual,
}

impl Durability {
    /// True for [`Durability::Immediate`].
    #[must_use]
    pub fn is_immediate(self) -> bool {
        self == Durability::Immediate
    }
}
