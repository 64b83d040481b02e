//! Guards: pure checks that say no before anything is created. Each refusal is an
//! [`Error`](crate::error::Error) of kind `Refused` that explains itself and names its fix.

pub mod data;
pub mod mounts;
pub mod policy;
pub mod workspace;
