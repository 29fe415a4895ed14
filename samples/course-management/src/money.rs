//! [`Money`]: an amount in cents, written in JSON as a number with at most two decimals.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

/// An amount of money, held as whole cents so that prices compare exactly.
///
/// In JSON it is a plain number (`12.5`, `99`, `0.99`); more than two decimals are refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(i64);

/// The largest amount accepted: ten million.
const MAX_CENTS: i64 = 1_000_000_000;

impl Money {
    /// An amount of `cents` cents.
    #[must_use]
    pub const fn from_cents(cents: i64) -> Money {
        Money(cents)
    }

    /// The amount in cents.
    #[must_use]
    pub const fn cents(self) -> i64 {
        self.0
    }

    /// True for amounts above zero.
    #[must_use]
    pub const fn is_positive(self) -> bool {
        self.0 > 0
    }

    /// The sum, saturating rather than overflowing.
    #[must_use]
    pub const fn plus(self, other: Money) -> Money {
        Money(self.0.saturating_add(other.0))
    }

    fn from_number(value: f64) -> Option<Money> {
        let cents = value * 100.0;
        let rounded = cents.round();
        let exact = (cents - rounded).abs() < 1e-6;
        (value.is_finite() && exact && rounded.abs() <= MAX_CENTS as f64)
            .then_some(Money(rounded as i64))
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0 % 100 == 0 {
            serializer.serialize_i64(self.0 / 100)
        } else {
            serializer.serialize_f64(self.0 as f64 / 100.0)
        }
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = f64::deserialize(deserializer)?;
        Money::from_number(value).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{value} is not an amount of money: use at most two decimals and at most ten million"
            ))
        })
    }
}

/// In the OpenAPI document: a number of at most two decimals, at most ten million either way.
impl utoipa::PartialSchema for Money {
    fn schema() -> RefOr<Schema> {
        let max = MAX_CENTS as f64 / 100.0;
        ObjectBuilder::new()
            .schema_type(Type::Number)
            .multiple_of(Some(0.01))
            .minimum(Some(-max))
            .maximum(Some(max))
            .description(Some(
                "An amount of money: a number with at most two decimals.",
            ))
            .examples([serde_json::json!(39.99)])
            .into()
    }
}

impl utoipa::ToSchema for Money {}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Option<Money> {
        serde_json::from_str(json).ok()
    }

    #[test]
    fn amounts_round_trip_exactly() {
        for (json, cents) in [("12.5", 1250), ("99", 9900), ("0.99", 99), ("19.99", 1999)] {
            let money = parse(json);
            assert_eq!(money, Some(Money::from_cents(cents)), "{json}");
            let back = serde_json::to_string(&Money::from_cents(cents)).ok();
            assert_eq!(back.as_deref(), Some(json));
        }
        assert_eq!(Money::from_cents(1205).to_string(), "12.05");
        assert_eq!(Money::from_cents(-5).to_string(), "-0.05");
    }

    #[test]
    fn more_than_two_decimals_are_refused() {
        assert_eq!(parse("1.005"), None);
        assert_eq!(parse("\"12\""), None);
        assert_eq!(parse("1e12"), None);
    }
}
