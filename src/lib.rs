//! statsfs facade (filled in below).
pub use statsfs_core::*;
