//! Edge signaling: WHIP/WHEP/WebTransport session set-up answered with a redirect and a fresh session token.
