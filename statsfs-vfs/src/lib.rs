//! statsfs-vfs: the FUSE view (in progress).
