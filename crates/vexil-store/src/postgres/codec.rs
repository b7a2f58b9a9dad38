//! How values are written to and read from columns.
//!
//! Timestamps are `timestamptz`, which keeps microseconds: a time is truncated to the
//! microsecond on its way in. The store's own times (commit times) come from the database's
//! clock and so are whole microseconds already; a caller's (a key's creation time) loses its
//! nanoseconds. JSON is `json`, not `jsonb`: it keeps the document's text, so the order of an
//! object's keys survives the round trip.

use std::time::{Duration, SystemTime};

use jiff::Timestamp;
use serde_json::Value;
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, Json};

use super::error;
use crate::StoreError;

/// A timestamp as `timestamptz` takes it: truncated (towards the past) to the microsecond.
pub(super) fn timestamp_to_sql(at: Timestamp) -> Result<SystemTime, StoreError> {
    let micros = at.as_nanosecond().div_euclid(1000);
    to_system_time(micros)
}

/// The lower bound of a `since` filter: rounded up to the microsecond, so that `at >= bound`
/// on stored (truncated) times means the same as `at >= since` on exact times.
pub(super) fn lower_bound_to_sql(since: Timestamp) -> Result<SystemTime, StoreError> {
    let nanos = since.as_nanosecond();
    let micros = nanos.div_euclid(1000) + i128::from(nanos.rem_euclid(1000) != 0);
    to_system_time(micros)
}

fn to_system_time(micros: i128) -> Result<SystemTime, StoreError> {
    // Straight to `SystemTime`, not through `Timestamp`: a bound rounded up past jiff's last
    // instant is still a valid bound.
    let offset = u64::try_from(micros.unsigned_abs())
        .map(Duration::from_micros)
        .map_err(|_| error::corrupt("timestamp", format_args!("{micros}µs overflows")))?;
    let at = if micros < 0 {
        SystemTime::UNIX_EPOCH.checked_sub(offset)
    } else {
        SystemTime::UNIX_EPOCH.checked_add(offset)
    };
    at.ok_or_else(|| error::corrupt("timestamp", format_args!("{micros}µs overflows")))
}

pub(super) fn timestamp_from_sql(at: SystemTime) -> Result<Timestamp, StoreError> {
    Timestamp::try_from(at).map_err(|err| error::corrupt("timestamp", err))
}

/// A JSON document as a parameter.
pub(super) fn json_to_sql(value: &Value) -> Json<&Value> {
    Json(value)
}

/// A version or revision about to be written. Only values the store computed itself reach
/// here, so one out of `bigint`'s range means the counter overflowed.
pub(super) fn u64_to_sql(value: u64, what: &'static str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| error::corrupt(what, format_args!("{value} overflows")))
}

/// A version, revision or id read back: `bigint` is signed, ours are not.
pub(super) fn u64_from_sql(value: i64, what: &'static str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| error::corrupt(what, value))
}

/// Typed access to a row's columns, with decoding failures as [`StoreError`]s.
pub(super) trait RowExt {
    /// The column at `idx`, decoded.
    fn column<'a, T: FromSql<'a>>(&'a self, idx: usize) -> Result<T, StoreError>;
    /// A `bigint` column holding an unsigned number.
    fn u64(&self, idx: usize, what: &'static str) -> Result<u64, StoreError>;
    /// A `timestamptz` column.
    fn timestamp(&self, idx: usize) -> Result<Timestamp, StoreError>;
    /// A nullable `timestamptz` column.
    fn optional_timestamp(&self, idx: usize) -> Result<Option<Timestamp>, StoreError>;
    /// A `json` column.
    fn json(&self, idx: usize) -> Result<Value, StoreError>;
    /// A nullable `json` column.
    fn optional_json(&self, idx: usize) -> Result<Option<Value>, StoreError>;
}

impl RowExt for Row {
    fn column<'a, T: FromSql<'a>>(&'a self, idx: usize) -> Result<T, StoreError> {
        self.try_get(idx).map_err(error::postgres)
    }

    fn u64(&self, idx: usize, what: &'static str) -> Result<u64, StoreError> {
        u64_from_sql(self.column(idx)?, what)
    }

    fn timestamp(&self, idx: usize) -> Result<Timestamp, StoreError> {
        timestamp_from_sql(self.column(idx)?)
    }

    fn optional_timestamp(&self, idx: usize) -> Result<Option<Timestamp>, StoreError> {
        self.column::<Option<SystemTime>>(idx)?
            .map(timestamp_from_sql)
            .transpose()
    }

    fn json(&self, idx: usize) -> Result<Value, StoreError> {
        Ok(self.column::<Json<Value>>(idx)?.0)
    }

    fn optional_json(&self, idx: usize) -> Result<Option<Value>, StoreError> {
        Ok(self.column::<Option<Json<Value>>>(idx)?.map(|json| json.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn timestamps_are_truncated_to_microseconds() {
        for (given, stored) in [
            ("2026-01-15T10:00:00Z", "2026-01-15T10:00:00Z"),
            ("2026-01-15T10:00:00.123456Z", "2026-01-15T10:00:00.123456Z"),
            (
                "2026-01-15T10:00:00.123456789Z",
                "2026-01-15T10:00:00.123456Z",
            ),
            (
                "1969-12-31T23:59:59.9999999Z",
                "1969-12-31T23:59:59.999999Z",
            ),
            (
                "1999-12-31T23:59:59.9999999Z",
                "1999-12-31T23:59:59.999999Z",
            ),
        ] {
            let back = timestamp_from_sql(timestamp_to_sql(ts(given)).unwrap()).unwrap();
            assert_eq!(back, ts(stored), "{given}");
        }
    }

    #[test]
    fn lower_bounds_are_rounded_up() {
        for (given, bound) in [
            ("2026-01-15T10:00:00Z", "2026-01-15T10:00:00Z"),
            ("2026-01-15T10:00:00.000001Z", "2026-01-15T10:00:00.000001Z"),
            (
                "2026-01-15T10:00:00.0000001Z",
                "2026-01-15T10:00:00.000001Z",
            ),
            ("1969-12-31T23:59:59.9999999Z", "1970-01-01T00:00:00Z"),
        ] {
            let back = timestamp_from_sql(lower_bound_to_sql(ts(given)).unwrap()).unwrap();
            assert_eq!(back, ts(bound), "{given}");
        }
    }

    #[test]
    fn the_extremes_convert() {
        for at in [Timestamp::MIN, Timestamp::MAX] {
            let stored = timestamp_to_sql(at).unwrap();
            assert!(timestamp_from_sql(stored).is_ok());
            assert!(lower_bound_to_sql(at).is_ok());
        }
    }

    #[test]
    fn bad_values_are_internal_errors() {
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
