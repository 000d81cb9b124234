//! Streaming, line-based LL-HLS manifest rewriter for the edge: token propagation, base rewriting, variant filtering.
