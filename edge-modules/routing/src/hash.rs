//! The rendezvous hash: FNV-1a 64 finished with MurmurHash3's `fmix64`.

/// FNV-1a 64-bit offset basis (Fowler, Noll, Vo; IETF
/// draft-eastlake-fnv, "FNV Non-Cryptographic Hash Algorithm").
const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a 64-bit prime, 2⁴⁰ + 2⁸ + 0xb3.
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
/// Separates the stream name from the node id in the hashed bytes. 0xFF
/// never occurs in UTF-8, so `("ab", "c")` and `("a", "bc")` differ.
const SEPARATOR: u8 = 0xff;

fn fnv1a(mut state: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        state ^= u64::from(b);
        state = state.wrapping_mul(FNV_PRIME);
    }
    state
}

/// MurmurHash3's 64-bit finalizer (Austin Appleby, `fmix64`): full
/// avalanche, so node ids that differ in one trailing character get
/// unrelated scores (plain FNV-1a leaves their scores correlated).
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// The rendezvous (highest random weight) score of `node_id` for
/// `stream` (Thaler & Ravishankar, "Using Name-Based Mappings to Increase
/// Hit Rates", IEEE/ACM ToN 6(1), 1998): the node with the highest score
/// serves the stream, the next highest is its failover, and so on.
///
/// `score = fmix64(FNV-1a-64(stream ‖ 0xFF ‖ node_id))`, over the UTF-8
/// bytes, with wrapping 64-bit integer arithmetic only: identical on every
/// platform, WebAssembly included, and across releases of this crate (a
/// change would move every stream, so it is pinned by test vectors).
pub fn hrw_score(stream: &str, node_id: &str) -> u64 {
    StreamHash::new(stream).score(node_id)
}

/// [`hrw_score`] with the stream's part hashed once.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamHash(u64);

impl StreamHash {
    pub(crate) fn new(stream: &str) -> Self {
        Self(fnv1a(
            fnv1a(FNV_OFFSET_BASIS, stream.as_bytes()),
            &[SEPARATOR],
        ))
    }

    pub(crate) fn score(self, node_id: &str) -> u64 {
        fmix64(fnv1a(self.0, node_id.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_reference_vectors() {
        // From the FNV reference test suite (draft-eastlake-fnv).
        assert_eq!(fnv1a(FNV_OFFSET_BASIS, b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(FNV_OFFSET_BASIS, b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(FNV_OFFSET_BASIS, b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn fmix64_reference_vectors() {
        assert_eq!(fmix64(0), 0);
        // Computed independently (Python, with the same constants).
        assert_eq!(fmix64(1), 0xb456_bcfc_34c2_cb2c);
    }

    #[test]
    fn pinned_scores() {
        // Computed independently (Python) from the documented formula.
        assert_eq!(hrw_score("live/demo", "origin-eu-1"), 0xe955_3cb3_b3e1_7405);
        assert_eq!(hrw_score("live/demo", "origin-eu-2"), 0x4e5a_8046_da32_e486);
        assert_eq!(hrw_score("", ""), 0x1bbd_5c81_3c69_a8d7);
    }

    #[test]
    fn separator_disambiguates() {
        assert_ne!(hrw_score("ab", "c"), hrw_score("a", "bc"));
    }
}
