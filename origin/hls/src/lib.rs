//! LL-HLS playlists.
