//! Edge tokens: CTA-5007 Common Access Token (COSE_Mac0) and JWT mint/verify, key rotation, replay and renewal rules.
