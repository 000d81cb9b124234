//! `MediaTime` arithmetic over arbitrary ticks and clocks (timestamps come
//! from publishers): conversions never panic, a rebase is within half a
//! tick of the exact value, and comparison, equality and hashing agree.
#![no_main]

use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use livestack_media::time::{MediaTime, TimeError, Timescale};

fuzz_target!(|data: &[u8]| {
    let Some((ticks, rest)) = data.split_first_chunk::<8>() else {
        return;
    };
    let Some((from, rest)) = rest.split_first_chunk::<4>() else {
        return;
    };
    let Some((to, rest)) = rest.split_first_chunk::<4>() else {
        return;
    };
    let (Some(from), Some(to)) = (
        Timescale::new(u32::from_le_bytes(*from)),
        Timescale::new(u32::from_le_bytes(*to)),
    ) else {
        return;
    };
    let t = MediaTime::new(i64::from_le_bytes(*ticks), from);
    let exact = i128::from(t.ticks()) * i128::from(to.get());
    let den = i128::from(from.get());
    match t.rebase(to) {
        Ok(r) => {
            assert!(2 * (i128::from(r.ticks()) * den - exact).abs() <= den);
            assert_eq!(r.cmp(&t), (i128::from(r.ticks()) * den).cmp(&exact));
            assert_eq!(t.cmp(&r), r.cmp(&t).reverse());
            if r == t {
                let s = RandomState::new();
                assert_eq!(s.hash_one(r), s.hash_one(t));
            }
        }
        Err(e) => assert_eq!(e, TimeError::RebaseOverflow { value: t, to }),
    }
    match t.to_duration() {
        Ok(d) => {
            // Back on the same clock: off by the nanosecond rounding (half
            // a nanosecond of ticks) plus half a tick at most.
            if let Ok(back) = MediaTime::from_duration(d, from) {
                let diff = (i128::from(back.ticks()) - i128::from(t.ticks())).abs();
                assert!(2 * diff * 1_000_000_000 <= den + 1_000_000_000);
            }
        }
        Err(e) => assert!(t.is_negative() && e == TimeError::Negative { value: t }),
    }
    if let Some((delta, _)) = rest.split_first_chunk::<8>() {
        let delta = MediaTime::new(i64::from_le_bytes(*delta), from);
        if let Ok(sum) = t.checked_add(delta) {
            assert_eq!(sum.checked_sub(delta), Ok(t));
        }
        let _ = MediaTime::from_duration(Duration::from_nanos(delta.ticks().unsigned_abs()), to);
        assert!(matches!(
            t.checked_add(MediaTime::new(1, to)),
            Ok(_) | Err(TimeError::TimescaleMismatch { .. } | TimeError::ArithmeticOverflow { .. })
        ));
    }
});
