//! Kernel parameters under `/proc/sys` (`sysctl`), per network namespace.
//!
//! `/proc/sys/net` shows the network namespace of the task that opens the file, so
//! [`get`] and [`set`] open it from a thread that has joined the namespace.

use super::error::Result;
use super::netns;
use std::io;
use std::path::PathBuf;

/// The file of `key`: dotted (`net.ipv4.ip_forward`) or slashed (`net/ipv4/ip_forward`;
/// needed when a component, such as an interface name, holds a dot).
pub fn path_of(key: &str) -> io::Result<PathBuf> {
    let rel = if key.contains('/') {
        key.to_owned()
    } else {
        key.replace('.', "/")
    };
    if rel.is_empty() || rel.starts_with('/') || rel.split('/').any(|c| c.is_empty() || c == "..") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "invalid sysctl key",
        ));
    }
    Ok(PathBuf::from("/proc/sys").join(rel))
}

/// Reads `key` in namespace `ns`, without the trailing newline.
pub fn get(ns: &str, key: &str) -> Result<String> {
    netns::run_io(ns, &format!("sysctl {key}: read"), || {
        let s = std::fs::read_to_string(path_of(key)?)?;
        Ok(s.trim_end_matches('\n').to_owned())
    })
}

/// Writes `value` to `key` in namespace `ns` (`sysctl -w KEY=VALUE`).
pub fn set(ns: &str, key: &str, value: &str) -> Result<()> {
    netns::run_io(ns, &format!("sysctl {key}={value}: write"), || {
        std::fs::write(path_of(key)?, value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(
            path_of("net.ipv4.ip_forward").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/ip_forward")
        );
        assert_eq!(
            path_of("net/ipv4/conf/eth0.100/forwarding").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/conf/eth0.100/forwarding")
        );
        for bad in ["", "/net/x", "net/../x", "net..x"] {
            assert!(path_of(bad).is_err(), "{bad}");
        }
    }
}
