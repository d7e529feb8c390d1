//! imagegate: finds every container image reference in Kubernetes YAML and proves that each
//! one exists in its registry, before a merge deploys it.

pub mod finding;
pub mod image_ref;
pub mod manifest;
pub mod source;
