//! Sequence positions.

use std::fmt;
use std::num::NonZeroU64;

use serde::{Deserialize, Serialize};

use crate::Error;

/// The sequence position a store assigns to an event: 1, 2, 3, … contiguous and never reused.
///
/// Position 0 does not exist; "before the first event" is spelled `None` wherever a position is
/// optional (for example [`ReadOptions::after`](crate::ReadOptions::after)).
///
/// ```
/// use opossum_core::Position;
///
/// let p = Position::new(7)?;
/// assert_eq!(p.get(), 7);
/// assert_eq!(p.next().get(), 8);
/// assert!(Position::new(0).is_err());
/// # Ok::<(), opossum_core::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Position(NonZeroU64);

impl Position {
    /// The first position of every store.
    pub const FIRST: Position = Position(NonZeroU64::MIN);

    /// A position from its number.
    ///
    /// # Errors
    /// [`Error::ZeroPosition`] for 0.
    pub fn new(value: u64) -> Result<Position, Error> {
        NonZeroU64::new(value)
            .map(Position)
            .ok_or(Error::ZeroPosition)
    }

    /// The position after `head`, where `None` means an empty store: the position the next
    /// appended event receives.
    #[must_use]
    pub fn after(head: Option<Position>) -> Position {
        head.map_or(Position::FIRST, Position::next)
    }

    /// The position as a number (at least 1).
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0.get()
    }

    /// The following position.
    ///
    /// # Panics
    /// Only at `u64::MAX`, which a store cannot reach (it would take 584 years at a billion
    /// events per second).
    #[must_use]
    pub const fn next(self) -> Position {
        match self.0.checked_add(1) {
            Some(n) => Position(n),
            None => panic!("sequence position overflowed u64"),
        }
    }

    /// The preceding position, or `None` before the first.
    #[must_use]
    pub fn previous(self) -> Option<Position> {
        NonZeroU64::new(self.get() - 1).map(Position)
    }
}

impl fmt::Debug for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Position({})", self.0)
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl TryFrom<u64> for Position {
    type Error = Error;
    fn try_from(value: u64) -> Result<Self, Self::Error> {
        Position::new(value)
    }
}

impl From<Position> for u64 {
    fn from(p: Position) -> u64 {
        p.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_is_not_a_position() {
        assert!(matches!(Position::new(0), Err(Error::ZeroPosition)));
    }

    #[test]
    fn after_an_empty_store_is_the_first_position() {
        assert_eq!(Position::after(None), Position::FIRST);
        assert_eq!(Position::after(Some(Position::FIRST)).get(), 2);
    }

    #[test]
    fn previous_of_first_is_none() {
        assert_eq!(Position::FIRST.previous(), None);
        assert_eq!(
            Position::new(3).unwrap().previous().map(Position::get),
            Some(2)
        );
    }

    #[test]
    fn serializes_as_a_bare_number() {
        let p = Position::new(42).unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), "42");
        assert!(serde_json::from_str::<Position>("0").is_err());
    }
}
