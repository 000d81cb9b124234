//! Country → home region.

/// A small default country → region table, for registries whose regions
/// use these names: `us-east`, `us-west`, `sa-east`, `eu-west`,
/// `eu-central`, `me-central`, `af-south`, `ap-south`, `ap-southeast`,
/// `ap-northeast`. Keys are ISO 3166-1 alpha-2 codes (matched
/// case-insensitively). A registry with other region names passes its own
/// table in [`Policy::country_regions`](crate::Policy::country_regions).
pub const DEFAULT_COUNTRY_REGIONS: &[(&str, &str)] = &[
    ("US", "us-east"),
    ("CA", "us-east"),
    ("MX", "us-west"),
    ("BR", "sa-east"),
    ("AR", "sa-east"),
    ("CL", "sa-east"),
    ("CO", "sa-east"),
    ("PE", "sa-east"),
    ("GB", "eu-west"),
    ("IE", "eu-west"),
    ("FR", "eu-west"),
    ("ES", "eu-west"),
    ("PT", "eu-west"),
    ("BE", "eu-west"),
    ("NL", "eu-west"),
    ("DE", "eu-central"),
    ("AT", "eu-central"),
    ("CH", "eu-central"),
    ("IT", "eu-central"),
    ("PL", "eu-central"),
    ("CZ", "eu-central"),
    ("DK", "eu-central"),
    ("SE", "eu-central"),
    ("NO", "eu-central"),
    ("FI", "eu-central"),
    ("GR", "eu-central"),
    ("RO", "eu-central"),
    ("UA", "eu-central"),
    ("TR", "eu-central"),
    ("AE", "me-central"),
    ("SA", "me-central"),
    ("IL", "me-central"),
    ("EG", "me-central"),
    ("ZA", "af-south"),
    ("NG", "af-south"),
    ("KE", "af-south"),
    ("IN", "ap-south"),
    ("PK", "ap-south"),
    ("BD", "ap-south"),
    ("SG", "ap-southeast"),
    ("MY", "ap-southeast"),
    ("ID", "ap-southeast"),
    ("TH", "ap-southeast"),
    ("VN", "ap-southeast"),
    ("PH", "ap-southeast"),
    ("AU", "ap-southeast"),
    ("NZ", "ap-southeast"),
    ("JP", "ap-northeast"),
    ("KR", "ap-northeast"),
    ("TW", "ap-northeast"),
    ("HK", "ap-northeast"),
    ("CN", "ap-northeast"),
];

/// The home region of `country` in `table`, first match wins.
pub(crate) fn home_region<'t>(table: &[(&str, &'t str)], country: &str) -> Option<&'t str> {
    table
        .iter()
        .find(|(code, _)| code.eq_ignore_ascii_case(country))
        .map(|&(_, region)| region)
}
