//! Edge routing: nearest healthy region, rendezvous (HRW) hashing with bounded load.
