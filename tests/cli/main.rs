//! imagegate's command-line tests: one integration binary, driven like a shell session,
//! against a real registry process and real files built in temporary directories.

mod argo;
mod cache;
mod charts;
mod ci;
mod credentials;
mod diff;
mod faults;
mod gitops;
mod harness;
mod helm_render;
mod hostile;
mod loopback_http;
mod offline;
mod operators;
mod overlays;
mod real_repos;
mod realrepos;
mod registry;
mod render;
mod render_egress;
mod rules;
mod shipping;
mod tls;
mod trust;
mod verdicts;
