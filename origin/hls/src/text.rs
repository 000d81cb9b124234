//! Number, date and string formatting shared by the playlist renderers.
//!
//! Durations are formatted from integer nanoseconds, never through `f64`, so
//! the rendered text is exact and rounding direction is under our control.

use std::fmt;
use std::time::Duration;

/// Nanoseconds in one unit of the 5-decimal duration format (10 µs).
const NANOS_PER_UNIT5: u128 = 10_000;
/// Units of 10 µs in one second.
const UNITS5_PER_SEC: u128 = 100_000;

/// `d` in units of 10 µs, rounded to nearest (half up).
pub(crate) fn units5_round(d: Duration) -> u128 {
    (d.as_nanos() + NANOS_PER_UNIT5 / 2) / NANOS_PER_UNIT5
}

/// `d` in units of 10 µs, rounded up.
pub(crate) fn units5_ceil(d: Duration) -> u128 {
    d.as_nanos().div_ceil(NANOS_PER_UNIT5)
}

/// A duration in seconds with exactly five decimals, `d` given in 10 µs
/// units (RFC 8216bis §4.2 decimal-floating-point).
pub(crate) struct Secs5(pub(crate) u128);

impl fmt::Display for Secs5 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:05}",
            self.0 / UNITS5_PER_SEC,
            self.0 % UNITS5_PER_SEC
        )
    }
}

/// A duration in seconds with exactly three decimals, given in milliseconds.
pub(crate) struct Secs3(pub(crate) u128);

impl fmt::Display for Secs3 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}", self.0 / 1_000, self.0 % 1_000)
    }
}

/// The content of an HLS quoted-string (RFC 8216bis §4.2): the characters a
/// quoted-string cannot carry (`"`, CR, LF) are dropped, since the format has
/// no escape mechanism and emitting them would corrupt the playlist.
pub(crate) struct Quoted<'a>(pub(crate) &'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for piece in self.0.split(['"', '\r', '\n']) {
            f.write_str(piece)?;
        }
        f.write_str("\"")
    }
}

/// Whether `s` can be emitted in a quoted-string or URI line unchanged.
pub(crate) fn is_playlist_safe(s: &str) -> bool {
    !s.contains(['"', '\r', '\n'])
}

/// Milliseconds in one day.
const MS_PER_DAY: i64 = 86_400_000;

/// Civil (proleptic Gregorian) date from days since 1970-01-01.
///
/// Howard Hinnant's `civil_from_days`
/// (<https://howardhinnant.github.io/date_algorithms.html#civil_from_days>),
/// valid for every `i64` day count this module can produce.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based month
    let day = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let year = yoe + era * 400 + i64::from(month <= 2);
    // Both values are range-bounded by the arithmetic above.
    let month = u32::try_from(month).unwrap_or(1);
    let day = u32::try_from(day).unwrap_or(1);
    (year, month, day)
}

/// An `EXT-X-PROGRAM-DATE-TIME` value (RFC 8216bis §4.4.4.6): ISO 8601 /
/// RFC 3339 UTC with millisecond precision, e.g. `2026-11-21T15:00:00.000Z`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProgramDateTime(pub(crate) i64);

impl fmt::Display for ProgramDateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(MS_PER_DAY);
        let ms_of_day = self.0.rem_euclid(MS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        let hour = ms_of_day / 3_600_000;
        let minute = ms_of_day / 60_000 % 60;
        let second = ms_of_day / 1_000 % 60;
        let milli = ms_of_day % 1_000;
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{milli:03}Z"
        )
    }
}

/// Formats a Unix time in milliseconds as an `EXT-X-PROGRAM-DATE-TIME` value
/// (RFC 8216bis §4.4.4.6, ISO 8601 with milliseconds and `Z`), without any
/// date library: `1_795_273_200_000` → `"2026-11-21T15:00:00.000Z"`.
///
/// Times before 1970 are formatted correctly too (proleptic Gregorian).
pub fn format_program_date_time(unix_ms: i64) -> String {
    ProgramDateTime(unix_ms).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_date_time_table() {
        let table: &[(i64, &str)] = &[
            (0, "1970-01-01T00:00:00.000Z"),
            (1, "1970-01-01T00:00:00.001Z"),
            (86_399_999, "1970-01-01T23:59:59.999Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"), // leap day, 400-year rule
            (951_868_800_000, "2000-03-01T00:00:00.000Z"),
            (1_078_012_800_000, "2004-02-29T00:00:00.000Z"),
            (4_107_542_400_000, "2100-03-01T00:00:00.000Z"), // 2100 is not leap
            (4_107_542_399_999, "2100-02-28T23:59:59.999Z"),
            (1_709_164_800_000, "2024-02-29T00:00:00.000Z"),
            (1_735_689_599_999, "2024-12-31T23:59:59.999Z"),
            (1_795_273_200_000, "2026-11-21T15:00:00.000Z"),
            (1_795_273_200_123, "2026-11-21T15:00:00.123Z"),
            (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
            (-86_400_000, "1969-12-31T00:00:00.000Z"),
        ];
        for &(ms, want) in table {
            assert_eq!(format_program_date_time(ms), want, "unix ms {ms}");
        }
    }

    #[test]
    fn program_date_time_extremes_do_not_panic() {
        for ms in [i64::MIN, i64::MIN + 1, i64::MAX] {
            assert!(format_program_date_time(ms).ends_with('Z'));
        }
    }

    #[test]
    fn durations() {
        let table: &[(Duration, &str, &str)] = &[
            (Duration::from_millis(200), "0.20000", "0.20000"),
            (Duration::from_nanos(199_999_999), "0.20000", "0.20000"),
            (Duration::from_nanos(200_000_001), "0.20000", "0.20001"),
            (Duration::from_nanos(333_333_333), "0.33333", "0.33334"),
            (Duration::from_secs(2), "2.00000", "2.00000"),
            (Duration::ZERO, "0.00000", "0.00000"),
        ];
        for &(d, round, ceil) in table {
            assert_eq!(Secs5(units5_round(d)).to_string(), round, "{d:?}");
            assert_eq!(Secs5(units5_ceil(d)).to_string(), ceil, "{d:?}");
        }
        assert_eq!(Secs3(24_000).to_string(), "24.000");
        assert_eq!(Secs3(601).to_string(), "0.601");
    }

    #[test]
    fn quoted_drops_unrepresentable_characters() {
        assert_eq!(Quoted("a\"b\r\nc").to_string(), "\"abc\"");
        assert!(is_playlist_safe("video/"));
        assert!(!is_playlist_safe("a\nb"));
    }
}
