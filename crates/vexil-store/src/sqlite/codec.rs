//! How values are written to and read from columns.

use jiff::Timestamp;
use serde_json::Value;

use super::error;
use crate::StoreError;

/// A timestamp as fixed-width RFC 3339 text in UTC with nine fractional digits, so that text
/// order is time order (for `since` filters) and nothing is lost on the way back.
pub(super) fn timestamp_to_sql(at: Timestamp) -> String {
    format!("{at:.9}")
}

pub(super) fn timestamp_from_sql(text: &str) -> Result<Timestamp, StoreError> {
    text.parse()
        .map_err(|err| error::corrupt("timestamp", format_args!("{text:?}: {err}")))
}

pub(super) fn json_to_sql(value: &Value) -> Result<String, StoreError> {
    // Serialising a `Value` cannot fail (its map keys are strings), but say so if it ever does.
    serde_json::to_string(value).map_err(|err| StoreError::Internal(Box::new(err)))
}

pub(super) fn json_from_sql(text: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text).map_err(|err| error::corrupt("JSON document", err))
}

pub(super) fn optional_json_from_sql(text: Option<String>) -> Result<Option<Value>, StoreError> {
    text.as_deref().map(json_from_sql).transpose()
}

/// A version, revision or id read back: SQLite's integers are signed, ours are not.
pub(super) fn u64_from_sql(value: i64, what: &'static str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| error::corrupt(what, value))
}

/// A version or revision about to be written. Only values the store computed itself reach
/// here, so one out of SQLite's range means the counter overflowed.
pub(super) fn u64_to_sql(value: u64, what: &'static str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| error::corrupt(what, format_args!("{value} overflows")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_fixed_width_and_round_trip() {
        for text in [
            "1970-01-01T00:00:00Z",
            "2026-01-15T10:00:00.5Z",
            "2026-01-15T10:00:00.123456789Z",
            "9999-12-30T21:59:59.999999999Z",
        ] {
            let at: Timestamp = text.parse().unwrap();
            let stored = timestamp_to_sql(at);
            assert_eq!(
                stored.len(),
                "2026-01-15T10:00:00.000000000Z".len(),
                "{stored}"
            );
            assert_eq!(timestamp_from_sql(&stored).unwrap(), at);
        }
    }

    #[test]
    fn text_order_is_time_order() {
        let times: Vec<Timestamp> = [
            "2026-01-15T09:59:59.999999999Z",
            "2026-01-15T10:00:00Z",
            "2026-01-15T10:00:00.000000001Z",
            "2026-01-15T10:00:00.1Z",
            "2026-01-15T10:00:01Z",
        ]
        .iter()
        .map(|t| t.parse().unwrap())
        .collect();
        for pair in times.windows(2) {
            assert!(timestamp_to_sql(pair[0]) < timestamp_to_sql(pair[1]));
        }
    }

    #[test]
    fn bad_values_are_internal_errors() {
        assert!(matches!(
            timestamp_from_sql("yesterday"),
            Err(StoreError::Internal(_))
        ));
        assert!(matches!(json_from_sql("{"), Err(StoreError::Internal(_))));
        assert!(matches!(
            u64_from_sql(-1, "version"),
            Err(StoreError::Internal(_))
        ));
        assert!(matches!(
            u64_to_sql(u64::MAX, "revision"),
            Err(StoreError::Internal(_))
        ));
    }
}
