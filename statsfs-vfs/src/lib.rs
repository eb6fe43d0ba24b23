//! statsfs-vfs: the FUSE view (in progress).

#[cfg(feature = "http")]
pub mod http;
