//! imagegate's command-line tests: one integration binary, driven like a shell session,
//! against a real registry process and real files built in temporary directories.

mod cache;
mod charts;
mod ci;
mod credentials;
mod diff;
mod faults;
mod gitops;
mod harness;
mod hostile;
mod offline;
mod operators;
mod overlays;
mod realrepos;
mod registry;
mod rules;
mod shipping;
mod tls;
mod trust;
mod verdicts;
