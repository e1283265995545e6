//! The forwarder: pumps between a plain and a secure port, PN persistence, control.

pub mod locks;
pub mod pnstore;
pub mod pump;
pub mod runtime;
pub mod worker;
