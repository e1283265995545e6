//! The one root check of the workspace's tests and of `macsec demo`.
//!
//! Every test that needs root (network namespaces, veth pairs, packet sockets, a
//! forwarder pair) is named `root_*` and calls [`require`] first. Without root it fails
//! with [`NEEDS_ROOT`] instead of passing without having run, so a run never reports
//! `ok` for a test that did nothing; `cargo test -- --skip root_` leaves them out
//! explicitly.

/// What a root test says when it runs without root.
pub const NEEDS_ROOT: &str = "needs root: run `cargo test` as root, or leave the namespace \
                              tests out with `cargo test -- --skip root_`";

/// True if the effective user id is 0.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Fails the calling test with [`NEEDS_ROOT`] unless the effective user is root.
#[track_caller]
pub fn require() {
    if !is_root() {
        panic!("{NEEDS_ROOT}");
    }
}
