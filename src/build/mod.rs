//! `berth build PROJECT`: the project's image, built from its Dockerfile through the
//! Engine API, tagged by a hash of what the build reads.

pub mod context;
pub mod ignore;
