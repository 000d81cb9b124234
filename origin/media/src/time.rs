//! Media time: a tick count that carries its own clock.
//!
//! A [`MediaTime`] is `ticks / timescale` seconds, with a [`Timescale`]
//! (ticks per second) that is never zero. It stands for an instant on a
//! track's media timeline (a PTS or DTS) or for a span of it (a frame
//! duration, a composition offset `pts − dts`); the ticks are signed so
//! that both fit.
//!
//! The clocks this pipeline meets:
//! - 90 kHz for MPEG-TS PTS/DTS ([`Timescale::MPEG_TS`], ISO/IEC 13818-1
//!   §2.4.3.7), which is also the timescale of every video track;
//! - the sample rate for audio, so that AAC frames (1024 samples) have
//!   exact durations; CMAF writes a track's timescale into its `mdhd`
//!   (ISO/IEC 14496-12 §8.4.2) and its times into `tfdt` (§8.8.12) and
//!   `trun` (§8.8.8) in those ticks.
//!
//! Nothing here can divide by zero, and nothing overflows silently:
//! - [`MediaTime::rebase`] moves a time to another timescale, rounding to
//!   the nearest tick (halves away from zero), and fails with
//!   [`TimeError`] when the result does not fit 64 bits;
//! - [`MediaTime::checked_add`] / [`MediaTime::checked_sub`] require one
//!   timescale on both sides (mixing clocks is an error, not a silent
//!   conversion) and fail on overflow;
//! - [`MediaTime::to_duration`] fails on negative times,
//!   [`MediaTime::from_duration`] on durations too long for 64-bit ticks;
//! - comparison (`==`, `<`, [`Ord`]) is exact across timescales: it
//!   compares the rational values by cross-multiplying in 128 bits, so
//!   `3003 @ 90 kHz == 1601.6 @ 48 kHz` is never true by rounding and
//!   `90 000 @ 90 kHz == 48 000 @ 48 kHz` is.
//!
//! ```
//! use livestack_media::time::{MediaTime, Timescale};
//!
//! let audio = Timescale::new(48_000).expect("non-zero");
//! let pts = MediaTime::new(3003, Timescale::MPEG_TS);
//! // 3003 / 90 000 s = 1601.6 samples: rounds to 1602.
//! assert_eq!(pts.rebase(audio).map(|t| t.ticks()), Ok(1602));
//! assert!(MediaTime::new(1601, audio) < pts && pts < MediaTime::new(1602, audio));
//! ```

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::num::NonZeroU32;
use std::time::Duration;

/// Nanoseconds per second.
const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Ticks per second of a media clock; never zero.
///
/// A track's timescale is 90 kHz for video (the MPEG-TS system clock of
/// PTS/DTS, ISO/IEC 13818-1 §2.4.3.7) and the sample rate for audio; it is
/// the `timescale` of the track's `mdhd` box in CMAF (ISO/IEC 14496-12
/// §8.4.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timescale(NonZeroU32);

impl Timescale {
    /// 90 000 ticks per second: the clock of MPEG-TS PTS and DTS (ISO/IEC
    /// 13818-1 §2.4.3.7), and of every video track here.
    pub const MPEG_TS: Timescale = Timescale::from_const(90_000);

    /// 1 000 ticks per second: milliseconds.
    pub const MILLIS: Timescale = Timescale::from_const(1_000);

    /// 48 000 ticks per second: the usual audio sample rate (and Opus's
    /// only one, RFC 7845 §4).
    pub const HZ_48000: Timescale = Timescale::from_const(48_000);

    /// For constants only: `hz` must not be zero (checked at compile time
    /// where used in a `const`).
    const fn from_const(hz: u32) -> Timescale {
        match NonZeroU32::new(hz) {
            Some(hz) => Timescale(hz),
            None => panic!("a timescale constant is zero"),
        }
    }

    /// A timescale of `hz` ticks per second; `None` for zero.
    pub const fn new(hz: u32) -> Option<Timescale> {
        match NonZeroU32::new(hz) {
            Some(hz) => Some(Timescale(hz)),
            None => None,
        }
    }

    /// A timescale of `hz` ticks per second.
    pub const fn from_nonzero(hz: NonZeroU32) -> Timescale {
        Timescale(hz)
    }

    /// Ticks per second (Hz), at least 1.
    pub const fn get(self) -> u32 {
        self.0.get()
    }

    /// Ticks per second (Hz), as a [`NonZeroU32`].
    pub const fn nonzero(self) -> NonZeroU32 {
        self.0
    }
}

impl From<NonZeroU32> for Timescale {
    fn from(hz: NonZeroU32) -> Self {
        Timescale(hz)
    }
}

impl TryFrom<u32> for Timescale {
    type Error = TimeError;

    /// Fails with [`TimeError::ZeroTimescale`] for zero.
    fn try_from(hz: u32) -> Result<Self, TimeError> {
        Timescale::new(hz).ok_or(TimeError::ZeroTimescale)
    }
}

impl fmt::Display for Timescale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} Hz", self.0)
    }
}

/// Why a media time computation has no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimeError {
    /// A timescale of zero ticks per second was given.
    #[error("a timescale must not be zero")]
    ZeroTimescale,
    /// Converting `value` to `to` gives more ticks than an `i64` holds.
    #[error("{value} does not fit 64-bit ticks at {to}")]
    RebaseOverflow {
        /// The time converted.
        value: MediaTime,
        /// The target timescale.
        to: Timescale,
    },
    /// An addition or subtraction left the `i64` range of ticks.
    #[error("{lhs} {op} {rhs} ticks overflows 64 bits")]
    ArithmeticOverflow {
        /// The left operand.
        lhs: MediaTime,
        /// `'+'` or `'-'`.
        op: char,
        /// The right operand's ticks (in the left operand's timescale).
        rhs: i64,
    },
    /// The two operands of an addition, subtraction or difference are on
    /// different clocks; [`MediaTime::rebase`] one of them first.
    #[error("media times at {lhs} and {rhs} cannot be combined without a rebase")]
    TimescaleMismatch {
        /// The left operand's timescale.
        lhs: Timescale,
        /// The right operand's timescale.
        rhs: Timescale,
    },
    /// A negative media time has no [`Duration`].
    #[error("{value} is negative: no duration")]
    Negative {
        /// The time.
        value: MediaTime,
    },
    /// A [`Duration`] is too long for 64-bit ticks of `timescale`.
    #[error("{duration:?} does not fit 64-bit ticks at {timescale}")]
    DurationOverflow {
        /// The duration.
        duration: Duration,
        /// The timescale asked for.
        timescale: Timescale,
    },
}

/// `ticks / timescale` seconds: a point on a media timeline (PTS, DTS) or a
/// span of it (duration, composition offset). See the module docs for the
/// conversion and comparison rules.
///
/// Equality, ordering and hashing are by value, exactly: two times on
/// different clocks are equal when they denote the same rational number of
/// seconds. [`MediaTime::ticks`] and [`MediaTime::timescale`] give the
/// representation.
#[derive(Debug, Clone, Copy)]
pub struct MediaTime {
    ticks: i64,
    timescale: Timescale,
}

impl MediaTime {
    /// `ticks` of `timescale`.
    pub const fn new(ticks: i64, timescale: Timescale) -> MediaTime {
        MediaTime { ticks, timescale }
    }

    /// Zero ticks of `timescale`.
    pub const fn zero(timescale: Timescale) -> MediaTime {
        MediaTime::new(0, timescale)
    }

    /// `ticks` of the 90 kHz MPEG-TS clock ([`Timescale::MPEG_TS`]).
    pub const fn from_90khz(ticks: i64) -> MediaTime {
        MediaTime::new(ticks, Timescale::MPEG_TS)
    }

    /// The tick count, in [`timescale`](Self::timescale) units.
    pub const fn ticks(self) -> i64 {
        self.ticks
    }

    /// The clock of [`ticks`](Self::ticks).
    pub const fn timescale(self) -> Timescale {
        self.timescale
    }

    /// True below zero.
    pub const fn is_negative(self) -> bool {
        self.ticks < 0
    }

    /// True at zero.
    pub const fn is_zero(self) -> bool {
        self.ticks == 0
    }

    /// The same time on clock `to`, rounded to the nearest tick (halves
    /// away from zero). Exact when `to` divides evenly; the identity when
    /// `to` is this time's timescale.
    ///
    /// # Errors
    /// [`TimeError::RebaseOverflow`] when the result needs more than 64
    /// bits (only possible when `to` is faster than this clock).
    pub fn rebase(self, to: Timescale) -> Result<MediaTime, TimeError> {
        if to == self.timescale {
            return Ok(self);
        }
        let num = i128::from(self.ticks) * i128::from(to.get());
        let ticks = div_round(num, i128::from(self.timescale.get()));
        i64::try_from(ticks)
            .map(|ticks| MediaTime::new(ticks, to))
            .map_err(|_| TimeError::RebaseOverflow { value: self, to })
    }

    /// `self + rhs`, both on the same clock.
    ///
    /// # Errors
    /// [`TimeError::TimescaleMismatch`] for different timescales,
    /// [`TimeError::ArithmeticOverflow`] when the sum leaves `i64`.
    pub fn checked_add(self, rhs: MediaTime) -> Result<MediaTime, TimeError> {
        self.same_clock(rhs)?;
        self.checked_add_ticks(rhs.ticks)
    }

    /// `self − rhs`, both on the same clock: the span from `rhs` to `self`
    /// (negative when `rhs` is later). The composition offset of a frame is
    /// `pts.checked_sub(dts)`.
    ///
    /// # Errors
    /// [`TimeError::TimescaleMismatch`] for different timescales,
    /// [`TimeError::ArithmeticOverflow`] when the difference leaves `i64`.
    pub fn checked_sub(self, rhs: MediaTime) -> Result<MediaTime, TimeError> {
        self.same_clock(rhs)?;
        self.checked_sub_ticks(rhs.ticks)
    }

    /// `self + ticks` (ticks of this time's clock).
    ///
    /// # Errors
    /// [`TimeError::ArithmeticOverflow`] when the sum leaves `i64`.
    pub fn checked_add_ticks(self, ticks: i64) -> Result<MediaTime, TimeError> {
        self.ticks
            .checked_add(ticks)
            .map(|t| MediaTime::new(t, self.timescale))
            .ok_or(TimeError::ArithmeticOverflow {
                lhs: self,
                op: '+',
                rhs: ticks,
            })
    }

    /// `self − ticks` (ticks of this time's clock).
    ///
    /// # Errors
    /// [`TimeError::ArithmeticOverflow`] when the difference leaves `i64`.
    pub fn checked_sub_ticks(self, ticks: i64) -> Result<MediaTime, TimeError> {
        self.ticks
            .checked_sub(ticks)
            .map(|t| MediaTime::new(t, self.timescale))
            .ok_or(TimeError::ArithmeticOverflow {
                lhs: self,
                op: '-',
                rhs: ticks,
            })
    }

    /// This time as a [`Duration`] from zero, rounded to the nearest
    /// nanosecond.
    ///
    /// # Errors
    /// [`TimeError::Negative`] below zero. (Every non-negative `i64` tick
    /// count fits a `Duration`.)
    pub fn to_duration(self) -> Result<Duration, TimeError> {
        let Ok(ticks) = u64::try_from(self.ticks) else {
            return Err(TimeError::Negative { value: self });
        };
        let hz = u64::from(self.timescale.get());
        let secs = ticks / hz;
        // rem < hz ≤ u32::MAX, so rem × 10⁹ < 2⁶² fits u128 (and u64).
        let rem = u128::from(ticks % hz);
        let nanos = div_round(
            (rem * NANOS_PER_SEC) as i128,
            i128::from(self.timescale.get()),
        );
        // nanos ≤ 10⁹ (rounding up may reach a whole second): one more
        // second at most, and secs ≤ i64::MAX leaves room for it.
        Ok(Duration::from_secs(secs) + Duration::from_nanos(nanos as u64))
    }

    /// `d` in ticks of `timescale`, rounded to the nearest tick.
    ///
    /// # Errors
    /// [`TimeError::DurationOverflow`] when that is more than `i64::MAX`
    /// ticks.
    pub fn from_duration(d: Duration, timescale: Timescale) -> Result<MediaTime, TimeError> {
        // as_nanos < 2⁹⁴ and hz < 2³², so the product fits 127 bits.
        let num = d.as_nanos() * u128::from(timescale.get());
        let ticks = (num + NANOS_PER_SEC / 2) / NANOS_PER_SEC;
        i64::try_from(ticks)
            .map(|ticks| MediaTime::new(ticks, timescale))
            .map_err(|_| TimeError::DurationOverflow {
                duration: d,
                timescale,
            })
    }

    fn same_clock(self, rhs: MediaTime) -> Result<(), TimeError> {
        if self.timescale == rhs.timescale {
            Ok(())
        } else {
            Err(TimeError::TimescaleMismatch {
                lhs: self.timescale,
                rhs: rhs.timescale,
            })
        }
    }
}

/// `num / den` rounded to nearest, halves away from zero; `den > 0`.
fn div_round(num: i128, den: i128) -> i128 {
    let half = den / 2;
    if num >= 0 {
        (num + half) / den
    } else {
        (num - half) / den
    }
}

/// Greatest common divisor, `b > 0`.
fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl PartialEq for MediaTime {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for MediaTime {}

impl PartialOrd for MediaTime {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for MediaTime {
    /// Exact: `a/p` vs `b/q` as `a·q` vs `b·p` in 128 bits (|a·q| < 2⁹⁵).
    fn cmp(&self, other: &Self) -> Ordering {
        if self.timescale == other.timescale {
            return self.ticks.cmp(&other.ticks);
        }
        let lhs = i128::from(self.ticks) * i128::from(other.timescale.get());
        let rhs = i128::from(other.ticks) * i128::from(self.timescale.get());
        lhs.cmp(&rhs)
    }
}

impl Hash for MediaTime {
    /// Hashes the reduced fraction, so that equal values hash alike.
    fn hash<H: Hasher>(&self, state: &mut H) {
        let hz = u64::from(self.timescale.get());
        // g ≥ 1 divides both, so neither division overflows or truncates.
        let g = gcd(self.ticks.unsigned_abs(), hz);
        (self.ticks / g as i64).hash(state);
        (hz / g).hash(state);
    }
}

impl fmt::Display for MediaTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ticks at {}", self.ticks, self.timescale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::DefaultHasher;

    const AUDIO: Timescale = Timescale::HZ_48000;
    /// The modulus of 33-bit PTS/DTS values (ISO/IEC 13818-1 §2.4.3.7).
    const WRAP: i64 = 1 << 33;

    fn ts(hz: u32) -> Timescale {
        Timescale::new(hz).expect("non-zero")
    }

    fn hash_of(t: MediaTime) -> u64 {
        let mut h = DefaultHasher::new();
        t.hash(&mut h);
        h.finish()
    }

    /// A small deterministic generator (SplitMix64) for the property tests.
    fn splitmix(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    #[test]
    fn zero_timescale_is_refused() {
        assert_eq!(Timescale::new(0), None);
        assert_eq!(Timescale::try_from(0), Err(TimeError::ZeroTimescale));
        assert_eq!(Timescale::try_from(90_000), Ok(Timescale::MPEG_TS));
        assert_eq!(Timescale::MPEG_TS.get(), 90_000);
        assert_eq!(Timescale::MPEG_TS.to_string(), "90000 Hz");
    }

    #[test]
    fn rebase_rounds_to_nearest_with_halves_away_from_zero() {
        let t = |ticks| {
            MediaTime::from_90khz(ticks)
                .rebase(AUDIO)
                .map(MediaTime::ticks)
        };
        // 90 kHz → 48 kHz multiplies by 8/15.
        assert_eq!(t(15), Ok(8));
        assert_eq!(t(1), Ok(1)); // 0.533…
        assert_eq!(t(-1), Ok(-1));
        assert_eq!(t(3003), Ok(1602)); // 1601.6
        assert_eq!(t(-3003), Ok(-1602));
        // 1 tick of 2 Hz is exactly half a tick of 1 Hz: away from zero.
        assert_eq!(
            MediaTime::new(1, ts(2)).rebase(ts(1)),
            Ok(MediaTime::new(1, ts(1)))
        );
        assert_eq!(
            MediaTime::new(-1, ts(2))
                .rebase(ts(1))
                .map(MediaTime::ticks),
            Ok(-1)
        );
        // The identity keeps the representation.
        let same = MediaTime::new(7, AUDIO).rebase(AUDIO).expect("identity");
        assert_eq!((same.ticks(), same.timescale()), (7, AUDIO));
    }

    #[test]
    fn wrap_sized_values_convert_exactly() {
        // Unwrapped PTS values beyond 33 bits (a day and more of 90 kHz).
        for ticks in [WRAP - 1, WRAP, WRAP + 3000, 5 * WRAP + 1234, -WRAP] {
            let t = MediaTime::from_90khz(ticks);
            let audio = t.rebase(AUDIO).expect("fits");
            assert_eq!(audio.ticks(), div_round(i128::from(ticks) * 8, 15) as i64);
            // 90 kHz is a multiple of 1 kHz: a millisecond round trip of a
            // multiple of 90 ticks is exact.
            let ms = MediaTime::from_90khz(ticks / 90 * 90).rebase(Timescale::MILLIS);
            assert_eq!(ms.map(MediaTime::ticks), Ok(ticks / 90));
        }
        let day = MediaTime::from_90khz(WRAP).to_duration().expect("positive");
        // 2³³ / 90 000 s = 95 443.717 688 888… s, to the nearest nanosecond.
        assert_eq!(day, Duration::from_nanos((WRAP as u64 * 100_000 + 4) / 9));
    }

    #[test]
    fn overflow_is_an_error() {
        let big = MediaTime::new(i64::MAX, ts(1));
        assert_eq!(
            big.rebase(Timescale::MPEG_TS),
            Err(TimeError::RebaseOverflow {
                value: big,
                to: Timescale::MPEG_TS
            })
        );
        // Slower clocks never overflow.
        assert_eq!(
            MediaTime::from_90khz(i64::MAX)
                .rebase(ts(1))
                .map(MediaTime::ticks),
            Ok(i64::MAX / 90_000 + 1)
        );
        assert!(matches!(
            big.checked_add_ticks(1),
            Err(TimeError::ArithmeticOverflow {
                op: '+',
                rhs: 1,
                ..
            })
        ));
        assert!(
            MediaTime::new(i64::MIN, ts(1))
                .checked_sub(MediaTime::new(1, ts(1)))
                .is_err()
        );
        assert!(matches!(
            MediaTime::from_duration(Duration::MAX, Timescale::MPEG_TS),
            Err(TimeError::DurationOverflow { .. })
        ));
    }

    #[test]
    fn arithmetic_needs_one_clock() {
        let a = MediaTime::from_90khz(10_800);
        let b = MediaTime::from_90khz(7_200);
        assert_eq!(a.checked_sub(b), Ok(MediaTime::from_90khz(3_600)));
        assert_eq!(b.checked_sub(a).map(MediaTime::ticks), Ok(-3_600));
        assert_eq!(a.checked_add(b).map(MediaTime::ticks), Ok(18_000));
        // Equal values on different clocks still do not mix.
        assert_eq!(
            a.checked_sub(MediaTime::new(1, ts(1))),
            Err(TimeError::TimescaleMismatch {
                lhs: Timescale::MPEG_TS,
                rhs: ts(1)
            })
        );
    }

    #[test]
    fn durations_round_and_refuse_negatives() {
        let d = MediaTime::new(1024, AUDIO).to_duration();
        assert_eq!(d, Ok(Duration::from_nanos(21_333_333)));
        // 2/3 ns rounds up.
        assert_eq!(
            MediaTime::new(2, ts(3_000_000_000)).to_duration(),
            Ok(Duration::from_nanos(1))
        );
        assert_eq!(
            MediaTime::new(i64::MAX, ts(1)).to_duration(),
            Ok(Duration::from_secs(i64::MAX as u64))
        );
        let neg = MediaTime::from_90khz(-1);
        assert_eq!(neg.to_duration(), Err(TimeError::Negative { value: neg }));
        assert_eq!(
            MediaTime::from_duration(Duration::from_millis(200), Timescale::MPEG_TS),
            Ok(MediaTime::from_90khz(18_000))
        );
        // 0.5 tick rounds up, just below stays.
        assert_eq!(
            MediaTime::from_duration(Duration::from_nanos(500_000_000), ts(1))
                .map(MediaTime::ticks),
            Ok(1)
        );
        assert_eq!(
            MediaTime::from_duration(Duration::from_nanos(499_999_999), ts(1))
                .map(MediaTime::ticks),
            Ok(0)
        );
    }

    #[test]
    fn comparison_is_exact_across_clocks() {
        let second_90k = MediaTime::from_90khz(90_000);
        let second_48k = MediaTime::new(48_000, AUDIO);
        assert_eq!(second_90k, second_48k);
        assert_eq!(hash_of(second_90k), hash_of(second_48k));
        assert_eq!(
            hash_of(MediaTime::zero(AUDIO)),
            hash_of(MediaTime::zero(ts(7)))
        );
        // 3003 @ 90 kHz is 1601.6 samples: between 1601 and 1602, equal to neither.
        let pts = MediaTime::from_90khz(3003);
        assert!(MediaTime::new(1601, AUDIO) < pts);
        assert!(pts < MediaTime::new(1602, AUDIO));
        assert_ne!(pts, pts.rebase(AUDIO).expect("fits"));
        // Extremes do not overflow the comparison.
        assert!(MediaTime::new(i64::MIN, ts(1)) < MediaTime::new(i64::MIN, ts(u32::MAX)));
        assert!(MediaTime::new(i64::MAX, ts(1)) > MediaTime::new(i64::MAX, ts(u32::MAX)));
    }

    /// Over many seeded values and clocks: a rebase is within half a tick of
    /// the exact value, comparisons agree with the exact rational order, a
    /// round trip through a faster multiple clock is lossless, and the
    /// nanosecond duration is within half a nanosecond.
    #[test]
    fn conversions_hold_over_many_values() {
        let clocks = [1, 1000, 8000, 44_100, 48_000, 90_000, 1_000_000, u32::MAX];
        let mut seed = 0x5eed_u64;
        for i in 0..20_000 {
            let r = splitmix(&mut seed);
            // Mix small values, 33-bit wrap-sized ones and full-range ones.
            let ticks = match i % 3 {
                0 => (r % 1_000_000) as i64 - 500_000,
                1 => (r % (4 * WRAP as u64)) as i64 - 2 * WRAP,
                _ => r as i64,
            };
            let from = ts(clocks[(splitmix(&mut seed) % clocks.len() as u64) as usize]);
            let to = ts(clocks[(splitmix(&mut seed) % clocks.len() as u64) as usize]);
            let t = MediaTime::new(ticks, from);
            let exact_num = i128::from(ticks) * i128::from(to.get());
            let den = i128::from(from.get());
            match t.rebase(to) {
                Ok(r) => {
                    // |r·den − exact_num| ≤ den / 2.
                    let err = (i128::from(r.ticks()) * den - exact_num).abs();
                    assert!(2 * err <= den, "{t} → {r}");
                    assert_eq!(r.cmp(&t), (i128::from(r.ticks()) * den).cmp(&exact_num));
                }
                Err(e) => {
                    assert_eq!(e, TimeError::RebaseOverflow { value: t, to });
                    assert!(
                        div_round(exact_num, den) > i128::from(i64::MAX)
                            || div_round(exact_num, den) < i128::from(i64::MIN)
                    );
                }
            }
            // A clock that is a multiple of this one holds it exactly.
            if let Some(fast) = from.get().checked_mul(3).and_then(Timescale::new)
                && let Ok(up) = t.rebase(fast)
            {
                assert_eq!(up.ticks(), ticks * 3);
                assert_eq!(up.rebase(from), Ok(t));
                assert_eq!(up, t);
            }
            match t.to_duration() {
                Ok(d) => {
                    let exact = i128::from(ticks) * 1_000_000_000;
                    let err = (d.as_nanos() as i128 * den - exact).abs();
                    assert!(2 * err <= den, "{t} → {d:?}");
                }
                Err(e) => assert!(ticks < 0 && e == TimeError::Negative { value: t }),
            }
        }
    }
}
