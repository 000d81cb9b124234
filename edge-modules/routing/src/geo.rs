//! Great-circle distance.

/// Mean Earth radius R₁ = (2a + b) / 3 of WGS 84 in kilometres (IUGG,
/// Moritz, "Geodetic Reference System 1980"), the usual radius for a
/// spherical-Earth haversine. The sphere is within 0.5 % of the ellipsoid's
/// geodesic distance everywhere, which is far finer than picking a region
/// needs.
pub const EARTH_MEAN_RADIUS_KM: f64 = 6_371.008_8;

/// A point on Earth in degrees (WGS 84): latitude −90..=90 (north
/// positive), longitude −180..=180 (east positive).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeoPoint {
    /// Latitude in degrees, north positive.
    pub lat_deg: f64,
    /// Longitude in degrees, east positive.
    pub lon_deg: f64,
}

impl GeoPoint {
    /// A point from latitude and longitude in degrees.
    pub const fn new(lat_deg: f64, lon_deg: f64) -> Self {
        Self { lat_deg, lon_deg }
    }
}

/// Great-circle distance between `a` and `b` in kilometres on a sphere of
/// radius [`EARTH_MEAN_RADIUS_KM`], by the haversine formula (R. W.
/// Sinnott, "Virtues of the Haversine", Sky and Telescope 68(2), 1984):
///
/// `h = sin²(Δφ/2) + cos φ₁ · cos φ₂ · sin²(Δλ/2)`, `d = 2R · asin(√min(h, 1))`.
///
/// Computed with the pure-Rust `libm` crate, so the result is bit-identical
/// on every target, WebAssembly included. A NaN coordinate gives NaN.
pub fn haversine_km(a: GeoPoint, b: GeoPoint) -> f64 {
    let to_rad = core::f64::consts::PI / 180.0;
    let (phi1, phi2) = (a.lat_deg * to_rad, b.lat_deg * to_rad);
    let half_dphi = (phi2 - phi1) / 2.0;
    let half_dlambda = (b.lon_deg - a.lon_deg) * to_rad / 2.0;
    let s_phi = libm::sin(half_dphi);
    let s_lambda = libm::sin(half_dlambda);
    let h = s_phi * s_phi + libm::cos(phi1) * libm::cos(phi2) * s_lambda * s_lambda;
    // Rounding can push h just above 1 for antipodal points; `min` would
    // also turn a NaN into 1, so compare explicitly.
    let h = if h > 1.0 { 1.0 } else { h };
    2.0 * EARTH_MEAN_RADIUS_KM * libm::asin(libm::sqrt(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Within `tolerance` (a fraction) of `want`.
    #[track_caller]
    fn close(got: f64, want: f64, tolerance: f64) {
        assert!(
            (got - want).abs() <= want * tolerance,
            "got {got} km, want {want} km ± {}%",
            tolerance * 100.0
        );
    }

    #[test]
    fn known_city_distances_within_half_a_percent() {
        // Great-circle distances as published (e.g. by the US NOAA/NHC
        // distance calculator and Rosetta Code's haversine task), airports
        // or city centres as named.
        let table = [
            // Rosetta Code: BNA (36.12, −86.67) to LAX (33.94, −118.40),
            // 2887.26 km with R = 6372.8 km.
            ((36.12, -86.67), (33.94, -118.40), 2_887.26),
            // London (51.5074, −0.1278) to Paris (48.8566, 2.3522): 343.5 km.
            ((51.5074, -0.1278), (48.8566, 2.3522), 343.5),
            // New York (40.7128, −74.0060) to London: 5,570 km.
            ((40.7128, -74.0060), (51.5074, -0.1278), 5_570.0),
            // New York to Los Angeles (34.0522, −118.2437): 3,936 km.
            ((40.7128, -74.0060), (34.0522, -118.2437), 3_936.0),
            // Sydney (−33.8688, 151.2093) to Tokyo (35.6762, 139.6503): 7,826 km.
            ((-33.8688, 151.2093), (35.6762, 139.6503), 7_826.0),
            // Frankfurt (50.1109, 8.6821) to Singapore (1.3521, 103.8198): 10,265 km.
            ((50.1109, 8.6821), (1.3521, 103.8198), 10_265.0),
        ];
        for ((a_lat, a_lon), (b_lat, b_lon), want) in table {
            let a = GeoPoint::new(a_lat, a_lon);
            let b = GeoPoint::new(b_lat, b_lon);
            close(haversine_km(a, b), want, 0.005);
            assert_eq!(haversine_km(a, b), haversine_km(b, a), "symmetric");
        }
    }

    #[test]
    fn exact_cases() {
        let p = GeoPoint::new(48.8566, 2.3522);
        assert_eq!(haversine_km(p, p), 0.0);
        let half_circumference = core::f64::consts::PI * EARTH_MEAN_RADIUS_KM;
        close(
            haversine_km(GeoPoint::new(0.0, 0.0), GeoPoint::new(0.0, 180.0)),
            half_circumference,
            1e-12,
        );
        close(
            haversine_km(GeoPoint::new(90.0, 0.0), GeoPoint::new(-90.0, 0.0)),
            half_circumference,
            1e-12,
        );
        // Across the antimeridian: 1° of longitude at the equator.
        close(
            haversine_km(GeoPoint::new(0.0, 179.5), GeoPoint::new(0.0, -179.5)),
            half_circumference / 180.0,
            1e-9,
        );
        assert!(haversine_km(GeoPoint::new(f64::NAN, 0.0), p).is_nan());
    }
}
