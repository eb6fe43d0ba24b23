//! A write timeout for a connection: a write that makes no progress for the limit fails
//! with `TimedOut`, which ends the connection. Reads are passed through unchanged (the
//! request head has its own timeout, and request bodies are never read).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use super::activity::Activity;

/// `S` whose writes fail once they have made no progress for `limit`; each write that
/// progresses is noted in the connection's [`Activity`] (a connection taking in a response
/// is busy, not idle).
pub(super) struct Stalls<S> {
    inner: S,
    limit: Duration,
    /// Armed when a write first finds the socket full; disarmed by any progress.
    timer: Option<Pin<Box<Sleep>>>,
    activity: Arc<Activity>,
}

impl<S> Stalls<S> {
    pub(super) fn new(inner: S, limit: Duration, activity: Arc<Activity>) -> Self {
        Stalls {
            inner,
            limit,
            timer: None,
            activity,
        }
    }

    /// The stream, for the close.
    pub(super) fn into_inner(self) -> S {
        self.inner
    }

    /// Called when a write is pending: arms the timer, or fails if it has run out.
    fn stalled<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let limit = self.limit;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client read nothing for {limit:?}"),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    /// The result of a write-side poll: progress disarms the timer.
    fn progress<T>(&mut self, cx: &mut Context<'_>, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match r {
            Poll::Ready(r) => {
                self.timer = None;
                self.activity.touch();
                Poll::Ready(r)
            }
            Poll::Pending => self.stalled(cx),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Stalls<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Stalls<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.progress(cx, r)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.progress(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_flush(cx);
        if let Poll::Ready(Ok(())) = r {
            this.activity.flushed();
        }
        this.progress(cx, r)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.progress(cx, r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// A writer that is always full: never makes progress.
    struct Full;

    impl AsyncWrite for Full {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &[u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Pending
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Pending
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Pending
        }
    }

    fn activity() -> Arc<Activity> {
        Arc::new(Activity::new(std::time::Instant::now()))
    }

    /// A runtime whose clock only moves when every task waits on it.
    fn paused() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap()
    }

    #[test]
    fn a_write_that_never_progresses_times_out() {
        let rt = paused();
        rt.block_on(async {
            let mut w = Stalls::new(Full, Duration::from_secs(10), activity());
            let e = w.write_all(b"x").await.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::TimedOut);
            let e = w.flush().await.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        });
    }

    #[test]
    fn progress_rearms_the_timer() {
        let rt = paused();
        rt.block_on(async {
            let mut w = Stalls::new(Vec::new(), Duration::from_secs(1), activity());
            for _ in 0..5 {
                w.write_all(b"abc").await.unwrap();
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            assert_eq!(w.inner.len(), 15);
            assert!(w.timer.is_none());
        });
    }
}
