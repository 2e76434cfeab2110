//! shadowdiff-replay re-drives recorded traffic (pair files, HAR, GoReplay `.gor`) against live
//! targets at the recorded pace or a chosen rate, and records the new responses in the pair format.
//!
//! Not built yet: see the replay issue. The crate exists so the workspace has its final shape.
