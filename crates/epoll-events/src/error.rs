//! The one error type of this crate, with the errno Linux returns in the same case.

/// Why an epoll call failed. [`Error::errno`] gives the value Linux's `epoll_create`,
/// `epoll_ctl` or `epoll_wait` sets in the same situation (epoll_ctl(2), epoll_wait(2)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Error {
    /// The epoll instance id is not open (`EBADF`).
    #[error("bad epoll instance")]
    BadInstance,
    /// The descriptor is out of range or not open (`EBADF`).
    #[error("bad descriptor")]
    BadDescriptor,
    /// `EPOLL_CTL_ADD` of a descriptor already registered with this instance, or opening
    /// a descriptor that is already open (`EEXIST`).
    #[error("descriptor already registered")]
    AlreadyExists,
    /// `EPOLL_CTL_MOD` or `EPOLL_CTL_DEL` of a descriptor not registered with this
    /// instance (`ENOENT`).
    #[error("descriptor not registered")]
    NotFound,
    /// An argument is invalid, e.g. `epoll_wait` with room for no event (`EINVAL`).
    #[error("invalid argument")]
    InvalidArgument,
    /// Every epoll instance slot is in use (`EMFILE`).
    #[error("too many epoll instances")]
    TooManyInstances,
    /// The registration limit is reached; Linux's equivalent is exceeding
    /// `max_user_watches` (`ENOSPC`).
    #[error("registration limit reached")]
    NoSpace,
}

/// Linux errno values (asm-generic/errno-base.h), so this crate needs no libc.
mod errno {
    pub const ENOENT: i32 = 2;
    pub const EBADF: i32 = 9;
    pub const EEXIST: i32 = 17;
    pub const EINVAL: i32 = 22;
    pub const EMFILE: i32 = 24;
    pub const ENOSPC: i32 = 28;
}

impl Error {
    /// The errno Linux reports for this failure.
    #[must_use]
    pub const fn errno(self) -> i32 {
        match self {
            Error::BadInstance | Error::BadDescriptor => errno::EBADF,
            Error::AlreadyExists => errno::EEXIST,
            Error::NotFound => errno::ENOENT,
            Error::InvalidArgument => errno::EINVAL,
            Error::TooManyInstances => errno::EMFILE,
            Error::NoSpace => errno::ENOSPC,
        }
    }
}
