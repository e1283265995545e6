use std::io;

/// The error of every operation: what was done, where, and the operating system's
/// answer, e.g. `netns lab-a: veth a0/p1: RTM_NEWLINK: File exists (os error 17)`.
#[derive(Debug, thiserror::Error)]
#[error("{}{what}: {io}", match ns { Some(n) => format!("netns {n}: "), None => String::new() })]
pub struct Error {
    ns: Option<String>,
    what: String,
    io: io::Error,
}

/// The result of this crate's operations.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An error of operation `what` inside namespace `ns`.
    pub(crate) fn ns(ns: &str, what: impl Into<String>, io: io::Error) -> Error {
        Error {
            ns: Some(ns.to_owned()),
            what: what.into(),
            io,
        }
    }

    /// An error of operation `what` outside any namespace.
    pub(crate) fn op(what: impl Into<String>, io: io::Error) -> Error {
        Error {
            ns: None,
            what: what.into(),
            io,
        }
    }

    /// The namespace the operation ran in, if any.
    pub fn netns(&self) -> Option<&str> {
        self.ns.as_deref()
    }

    /// The operation and its object, e.g. `veth a0/p1: RTM_NEWLINK`.
    pub fn what(&self) -> &str {
        &self.what
    }

    /// The underlying I/O error.
    pub fn io(&self) -> &io::Error {
        &self.io
    }

    /// The kind of the underlying I/O error.
    pub fn kind(&self) -> io::ErrorKind {
        self.io.kind()
    }

    /// The OS error number, if the error came from the kernel (also for netlink errors
    /// that carry the kernel's explanation, whose [`Error::io`] has none).
    pub fn raw_os_error(&self) -> Option<i32> {
        self.io.raw_os_error().or_else(|| {
            self.io
                .get_ref()
                .and_then(|e| e.downcast_ref::<super::nl::KernelError>())
                .map(|k| k.errno)
        })
    }
}

/// Turns an errno from `nix` into an [`io::Error`].
pub(crate) fn errno(e: nix::errno::Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_names_namespace_object_and_operation() {
        let e = Error::ns(
            "msx1-a",
            "veth a0/p1: RTM_NEWLINK",
            io::Error::from_raw_os_error(17),
        );
        assert_eq!(
            e.to_string(),
            "netns msx1-a: veth a0/p1: RTM_NEWLINK: File exists (os error 17)"
        );
        assert_eq!(e.raw_os_error(), Some(17));
        assert_eq!(e.netns(), Some("msx1-a"));
        let e = Error::op("pid 7: kill SIGTERM", io::Error::from_raw_os_error(3));
        assert_eq!(
            e.to_string(),
            "pid 7: kill SIGTERM: No such process (os error 3)"
        );
    }
}
