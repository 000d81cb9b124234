//! Region order from a country code when coordinates are unknown, and from
//! region names when nothing is known.

mod common;

use common::registry;
use livestack_routing::{ClientGeo, DEFAULT_COUNTRY_REGIONS, GeoPoint, OriginNode, Policy, rank};

/// The distinct regions of a ranking, in order.
fn regions(ranking: &[&OriginNode]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for node in ranking {
        if out.last() != Some(&node.region) {
            out.push(node.region.clone());
        }
    }
    out
}

fn country(code: &str) -> ClientGeo<'_> {
    ClientGeo {
        location: None,
        country: Some(code),
    }
}

#[test]
fn default_table_home_region_first_then_by_distance_from_it() {
    let nodes = registry();
    let policy = Policy::default();
    let order = |c: &str| regions(&rank("s", &country(c), &nodes, None, &policy));
    assert_eq!(
        order("DE"),
        ["eu-central", "eu-west", "us-east", "ap-southeast"]
    );
    assert_eq!(
        order("ie"),
        ["eu-west", "eu-central", "us-east", "ap-southeast"]
    );
    assert_eq!(
        order("US"),
        ["us-east", "eu-west", "eu-central", "ap-southeast"]
    );
    assert_eq!(
        order("AU"),
        ["ap-southeast", "eu-central", "eu-west", "us-east"]
    );
}

#[test]
fn unknown_country_or_missing_home_region_orders_by_name() {
    let nodes = registry();
    let policy = Policy::default();
    let by_name = ["ap-southeast", "eu-central", "eu-west", "us-east"];
    for client in [country("ZZ"), country("JP"), ClientGeo::default()] {
        assert_eq!(
            regions(&rank("s", &client, &nodes, None, &policy)),
            by_name,
            "{client:?}"
        );
    }
}

#[test]
fn caller_table_replaces_the_default() {
    let nodes = registry();
    let table = [("DE", "us-east")];
    let policy = Policy {
        country_regions: &table,
        ..Policy::default()
    };
    assert_eq!(
        regions(&rank("s", &country("de"), &nodes, None, &policy))[0],
        "us-east"
    );
    assert_eq!(
        regions(&rank("s", &country("FR"), &nodes, None, &policy)),
        ["ap-southeast", "eu-central", "eu-west", "us-east"],
        "not in the caller's table"
    );
}

#[test]
fn coordinates_take_precedence_over_country() {
    let nodes = registry();
    let client = ClientGeo {
        location: Some(GeoPoint::new(1.29, 103.85)),
        country: Some("DE"),
    };
    assert_eq!(
        regions(&rank("s", &client, &nodes, None, &Policy::default()))[0],
        "ap-southeast"
    );
}

#[test]
fn default_table_is_well_formed() {
    for (i, (code, region)) in DEFAULT_COUNTRY_REGIONS.iter().enumerate() {
        assert_eq!(code.len(), 2);
        assert!(code.bytes().all(|b| b.is_ascii_uppercase()));
        assert!(!region.is_empty());
        assert!(
            DEFAULT_COUNTRY_REGIONS[..i].iter().all(|(c, _)| c != code),
            "{code} listed twice"
        );
    }
}
