//! Placeholder module, replaced by its owner.
