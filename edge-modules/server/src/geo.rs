//! The client's location, from request headers a CDN in front of the edge
//! sets (or a GeoIP module of the PoP's own load balancer).
//!
//! Defaults (every name is configurable, [`GeoHeaders`]):
//!
//! | header | value | set by |
//! |---|---|---|
//! | `x-client-location` | `lat,lon`, WGS 84 degrees (`48.85,2.35`) | any front end |
//! | `cloudfront-viewer-latitude` + `cloudfront-viewer-longitude` | degrees, one each | Amazon CloudFront |
//! | `x-client-country` | ISO 3166-1 alpha-2 (`FR`) | any front end |
//! | `cf-ipcountry` | ISO 3166-1 alpha-2; `XX` unknown, `T1` Tor | Cloudflare |
//! | `cloudfront-viewer-country` | ISO 3166-1 alpha-2 | Amazon CloudFront |
//!
//! The first header of each list that parses wins. Coordinates take
//! precedence over the country in routing (`livestack:edge/types.client-geo`).
//! These headers are only as trustworthy as what sets them: an edge reached
//! directly lets a client claim any location. That only changes which
//! origin node it is routed to (placement still comes first, and load
//! bounds still apply), never what it may access; strip the headers at the
//! PoP's ingress if the front end does not overwrite them.

use http::{HeaderMap, HeaderName};
use livestack_edge::{ClientGeo, GeoPoint};

/// Which request headers carry the client's location. See the module
/// documentation for the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeoHeaders {
    /// Headers with `lat,lon` in degrees (WGS 84), tried in order.
    /// Default: `x-client-location`.
    pub location: Vec<HeaderName>,
    /// Pairs of headers with the latitude and the longitude apart, tried in
    /// order after [`location`](Self::location). Default:
    /// `cloudfront-viewer-latitude` / `cloudfront-viewer-longitude`.
    pub location_pairs: Vec<(HeaderName, HeaderName)>,
    /// Headers with an ISO 3166-1 alpha-2 country code, tried in order.
    /// Default: `x-client-country`, `cf-ipcountry`,
    /// `cloudfront-viewer-country`.
    pub country: Vec<HeaderName>,
}

impl Default for GeoHeaders {
    fn default() -> Self {
        Self {
            location: vec![HeaderName::from_static("x-client-location")],
            location_pairs: vec![(
                HeaderName::from_static("cloudfront-viewer-latitude"),
                HeaderName::from_static("cloudfront-viewer-longitude"),
            )],
            country: vec![
                HeaderName::from_static("x-client-country"),
                HeaderName::from_static("cf-ipcountry"),
                HeaderName::from_static("cloudfront-viewer-country"),
            ],
        }
    }
}

impl GeoHeaders {
    /// Parses header names as an operator writes them (any case; spaces
    /// around each name ignored), e.g. from a comma-separated flag.
    ///
    /// # Errors
    /// The first name that is not a valid HTTP header name.
    pub fn parse_names<S: AsRef<str>>(
        names: &[S],
    ) -> Result<Vec<HeaderName>, http::header::InvalidHeaderName> {
        names
            .iter()
            .map(|n| HeaderName::from_bytes(n.as_ref().trim().to_ascii_lowercase().as_bytes()))
            .collect()
    }

    /// The client's location as `headers` tell it; values that do not parse
    /// are ignored (an unknown location, not an error).
    pub fn client_geo(&self, headers: &HeaderMap) -> ClientGeo {
        let text = |name: &HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
        let location = self
            .location
            .iter()
            .find_map(|name| parse_location(text(name)?))
            .or_else(|| {
                self.location_pairs.iter().find_map(|(lat, lon)| {
                    point(
                        text(lat)?.trim().parse().ok()?,
                        text(lon)?.trim().parse().ok()?,
                    )
                })
            });
        let country = self
            .country
            .iter()
            .find_map(|name| parse_country(text(name)?));
        ClientGeo { location, country }
    }
}

/// `lat,lon` in degrees, in range.
fn parse_location(value: &str) -> Option<GeoPoint> {
    let (lat, lon) = value.split_once(',')?;
    point(lat.trim().parse().ok()?, lon.trim().parse().ok()?)
}

fn point(lat_deg: f64, lon_deg: f64) -> Option<GeoPoint> {
    ((-90.0..=90.0).contains(&lat_deg) && (-180.0..=180.0).contains(&lon_deg))
        .then_some(GeoPoint { lat_deg, lon_deg })
}

/// Two ASCII letters, upper-cased; `XX` (Cloudflare: unknown) is none.
fn parse_country(value: &str) -> Option<String> {
    let value = value.trim();
    (value.len() == 2
        && value.bytes().all(|b| b.is_ascii_alphabetic())
        && !value.eq_ignore_ascii_case("xx"))
    .then(|| value.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geo(pairs: &[(&'static str, &'static str)]) -> ClientGeo {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(HeaderName::from_static(k), v.parse().unwrap());
        }
        GeoHeaders::default().client_geo(&h)
    }

    #[test]
    fn location_and_country() {
        let g = geo(&[
            ("x-client-location", " 48.85 , 2.35"),
            ("cf-ipcountry", "fr"),
        ]);
        assert_eq!(
            g.location,
            Some(GeoPoint {
                lat_deg: 48.85,
                lon_deg: 2.35
            })
        );
        assert_eq!(g.country.as_deref(), Some("FR"));
        let g = geo(&[
            ("cloudfront-viewer-latitude", "38.9"),
            ("cloudfront-viewer-longitude", "-77.0"),
            ("cloudfront-viewer-country", "US"),
        ]);
        assert_eq!(
            g.location,
            Some(GeoPoint {
                lat_deg: 38.9,
                lon_deg: -77.0
            })
        );
        assert_eq!(g.country.as_deref(), Some("US"));
        // The first list entry that parses wins.
        let g = geo(&[("x-client-country", "DE"), ("cf-ipcountry", "FR")]);
        assert_eq!(g.country.as_deref(), Some("DE"));
    }

    #[test]
    fn names_from_a_command_line() {
        let names = GeoHeaders::parse_names(&[" CF-IPCountry", "x-geo"]).unwrap();
        assert_eq!(names, ["cf-ipcountry", "x-geo"]);
        assert!(GeoHeaders::parse_names(&["bad name"]).is_err());
    }

    #[test]
    fn bad_values_are_unknown() {
        for (name, value) in [
            ("x-client-location", "91,0"),
            ("x-client-location", "0,181"),
            ("x-client-location", "NaN,0"),
            ("x-client-location", "1"),
            ("x-client-location", "a,b"),
            ("cf-ipcountry", "XX"),
            ("cf-ipcountry", "T1"),
            ("cf-ipcountry", "FRA"),
            ("cf-ipcountry", ""),
        ] {
            let g = geo(&[(name, value)]);
            assert_eq!((g.location, g.country), (None, None), "{name}: {value}");
        }
        let g = geo(&[]);
        assert_eq!((g.location, g.country), (None, None));
    }
}
