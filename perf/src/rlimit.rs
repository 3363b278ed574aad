//! File-descriptor limit handling for the many-connection scenarios.

use crate::error::{Error, Result};

fn get() -> Result<libc::rlimit> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(Error(format!(
            "getrlimit: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(lim)
}

/// Current soft limit on open files.
pub fn nofile() -> Result<u64> {
    Ok(get()?.rlim_cur as u64)
}

/// Raises the soft limit to at least `want`, raising the hard limit too
/// when permitted (root). Returns the resulting soft limit, which may still
/// be below `want`; servers started afterwards inherit it.
pub fn raise_nofile(want: u64) -> Result<u64> {
    let lim = get()?;
    if lim.rlim_cur as u64 >= want {
        return Ok(lim.rlim_cur as u64);
    }
    let raised = libc::rlimit {
        rlim_cur: want as libc::rlim_t,
        rlim_max: lim.rlim_max.max(want as libc::rlim_t),
    };
    // SAFETY: setrlimit reads the struct we pass.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
        return Ok(want);
    }
    // Not allowed to raise the hard limit: take as much as it permits.
    let capped = libc::rlimit {
        rlim_cur: lim.rlim_max,
        rlim_max: lim.rlim_max,
    };
    // SAFETY: as above.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &capped) } == 0 {
        return Ok(lim.rlim_max as u64);
    }
    Ok(lim.rlim_cur as u64)
}

/// Lifts the locked-memory limit as far as allowed: natrix (glommio,
/// io_uring) wants to lock memory, and servers started from here inherit
/// the limit. Best effort; an unprivileged process keeps what it has.
pub fn raise_memlock() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) } != 0 {
        return;
    }
    let want = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit reads the struct we pass.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &want) } != 0 {
        let capped = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: as above.
        unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &capped) };
    }
}
