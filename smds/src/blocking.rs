//! Work that must not run on the async workers (CPU-heavy signature and chain checks, blocking
//! database reads) goes to tokio's blocking pool through [`offload`]. Each hand-off costs a thread
//! wake-up (tens of microseconds on a small VM), so a request makes at most one: code already
//! running in [`offload`] can ask [`on_blocking_pool`] and do its blocking reads in place.

use std::cell::Cell;

thread_local! {
    static ON_BLOCKING_POOL: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` on the blocking pool.
pub(crate) async fn offload<R: Send + 'static>(
    f: impl FnOnce() -> R + Send + 'static,
) -> Result<R, tokio::task::JoinError> {
    tokio::task::spawn_blocking(move || {
        ON_BLOCKING_POOL.with(|c| c.set(true));
        let r = f();
        ON_BLOCKING_POOL.with(|c| c.set(false));
        r
    })
    .await
}

/// Whether this thread is running a closure given to [`offload`].
pub(crate) fn on_blocking_pool() -> bool {
    ON_BLOCKING_POOL.with(Cell::get)
}
