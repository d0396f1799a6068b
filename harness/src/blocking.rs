//! File work on tokio's blocking pool that stops when its future is dropped: unpacking and
//! decompressing images can take seconds to minutes, and a signal (Ctrl-C) during it drops the
//! start-up future. Without this the pool thread would go on writing into a run directory that
//! is being removed, and the runtime's shutdown would wait for it to finish.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use crate::HarnessError;

/// How long dropping an unfinished job waits for its thread to notice and return. A job reads
/// in chunks of at most a few hundred KiB, so it returns within milliseconds; the bound only
/// keeps a stuck read (a hung network file system) from hanging the drop.
const STOP_WITHIN: Duration = Duration::from_secs(5);

/// Asks a running job to stop; the job sees it at its next read through [`Cancel::reader`]
/// or its next [`Cancel::check`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A token nobody cancels (the synchronous public entry points).
    pub(crate) fn never() -> Cancel {
        Cancel::default()
    }

    /// An error once the job was asked to stop. Not [`io::ErrorKind::Interrupted`]:
    /// `read_exact` and `io::copy` retry that, and a stopped job must end.
    pub(crate) fn check(&self) -> io::Result<()> {
        match self.0.load(Ordering::Relaxed) {
            true => Err(io::Error::other("stopped")),
            false => Ok(()),
        }
    }

    /// `inner`, whose every read fails once the job was asked to stop.
    pub(crate) fn reader<R: Read>(&self, inner: R) -> CancelRead<R> {
        CancelRead {
            inner,
            cancel: self.clone(),
        }
    }

    /// Asks the job to stop.
    pub(crate) fn stop(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A reader whose reads fail ([`Cancel::check`]) once its [`Cancel`] is set.
pub(crate) struct CancelRead<R> {
    inner: R,
    cancel: Cancel,
}

impl<R: Read> Read for CancelRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.cancel.check()?;
        self.inner.read(buf)
    }
}

/// Sets the token and waits (bounded) for the job's thread when the job's future is dropped
/// before the job ended.
struct StopOnDrop {
    cancel: Cancel,
    ended: mpsc::Receiver<()>,
    finished: bool,
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if !self.finished {
            self.cancel.stop();
            let _ = self.ended.recv_timeout(STOP_WITHIN);
        }
    }
}

/// Signals the end of a job, however it ends (a panic included).
struct EndOnDrop(mpsc::Sender<()>);

impl Drop for EndOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

/// Runs `job` on the blocking pool. Dropping the returned future before it resolves asks the
/// job to stop (through the [`Cancel`] it is given) and waits for its thread to return, so
/// nothing of it writes on after its caller went away. `what` names the job in the error of a
/// panic.
pub(crate) async fn run<T, F>(what: &'static str, job: F) -> Result<T, HarnessError>
where
    T: Send + 'static,
    F: FnOnce(&Cancel) -> T + Send + 'static,
{
    let cancel = Cancel::default();
    let (tx, rx) = mpsc::channel();
    let mut stop = StopOnDrop {
        cancel: cancel.clone(),
        ended: rx,
        finished: false,
    };
    let handle = tokio::task::spawn_blocking(move || {
        let _end = EndOnDrop(tx);
        job(&cancel)
    });
    let out = handle.await;
    stop.finished = true;
    out.map_err(|e| HarnessError::io(what, io::Error::other(e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Instant;

    /// An endless reader that counts its reads.
    struct Endless(Arc<AtomicUsize>);

    impl Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.0.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(1));
            Ok(buf.len())
        }
    }

    #[tokio::test]
    async fn a_dropped_job_stops_before_the_drop_returns() {
        let reads = Arc::new(AtomicUsize::new(0));
        let counted = reads.clone();
        let job = run("read forever", move |cancel| {
            io::copy(&mut cancel.reader(Endless(counted)), &mut io::sink())
        });
        let timed = tokio::time::timeout(Duration::from_millis(200), job).await;
        assert!(timed.is_err(), "an endless job ended");
        // The timeout dropped the job: its thread has returned, so no read happens any more.
        let after = reads.load(Ordering::Relaxed);
        assert!(after > 0, "the job never read");
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(reads.load(Ordering::Relaxed), after, "the job read on");
    }

    #[tokio::test]
    async fn a_finished_job_returns_its_value() {
        let started = Instant::now();
        let got = run("add", |cancel| cancel.check().map(|_| 2 + 2)).await;
        assert_eq!(got.unwrap().unwrap(), 4);
        assert!(started.elapsed() < STOP_WITHIN);
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_error_naming_it() {
        let got = run("explode", |_| -> () { panic!("boom") }).await;
        assert!(got.unwrap_err().to_string().contains("explode"));
    }
}
