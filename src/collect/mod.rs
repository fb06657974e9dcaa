//! Worker threads that move data out of the kernel: a periodic map poller
//! and a ring-buffer drain. They only read and forward over bounded
//! channels; they never print. Every layer reuses both.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Result;
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use libbpf_rs::{MapHandle, RingBufferBuilder};

/// A thread calling `read` every `interval` and once more when stopped, so
/// the last partial interval is not lost. Results go to the returned channel.
pub struct Poller<S> {
    pub samples: Receiver<Result<S>>,
    stop: Sender<()>,
    handle: JoinHandle<()>,
}

impl<S: Send + 'static> Poller<S> {
    pub fn spawn<F>(interval: Duration, mut read: F) -> Poller<S>
    where
        F: FnMut() -> Result<S> + Send + 'static,
    {
        let (tx, samples) = bounded(16);
        let (stop, stop_rx) = bounded::<()>(1);
        let handle = std::thread::Builder::new()
            .name("map-poller".into())
            .spawn(move || loop {
                let last = match stop_rx.recv_timeout(interval) {
                    Err(RecvTimeoutError::Timeout) => false,
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => true,
                };
                if tx.send(read()).is_err() || last {
                    return;
                }
            })
            .expect("spawning a thread");
        Poller {
            samples,
            stop,
            handle,
        }
    }

    /// Stops the thread after one final read, and returns every read not
    /// yet received, oldest first: the final read is last. Callers must fold
    /// in the earlier ones too (each closes an interval of its own).
    pub fn finish(self) -> Result<Vec<S>> {
        let _ = self.stop.send(());
        let rest: Vec<Result<S>> = self.samples.iter().collect();
        let _ = self.handle.join();
        rest.into_iter().collect()
    }
}

/// A thread draining a BPF ring buffer, parsing each record with `parse` and
/// forwarding it. Records that find the channel full are counted in
/// `dropped` (back-pressure never blocks the kernel side).
pub struct RingDrain<E> {
    pub events: Receiver<E>,
    pub dropped: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Result<()>>,
}

impl<E: Send + 'static> RingDrain<E> {
    pub fn spawn<P>(map: MapHandle, capacity: usize, parse: P) -> RingDrain<E>
    where
        P: Fn(&[u8]) -> Option<E> + Send + 'static,
    {
        let (tx, events) = bounded(capacity);
        let stop = Arc::new(AtomicBool::new(false));
        let dropped = Arc::new(AtomicU64::new(0));
        let (stop2, dropped2) = (stop.clone(), dropped.clone());
        let handle = std::thread::Builder::new()
            .name("ringbuf-drain".into())
            .spawn(move || -> Result<()> {
                let mut builder = RingBufferBuilder::new();
                builder.add(&map, |data: &[u8]| {
                    if let Some(e) = parse(data) {
                        if tx.try_send(e).is_err() {
                            dropped2.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    0
                })?;
                let rb = builder.build()?;
                while !stop2.load(Ordering::Relaxed) {
                    // EINTR from our own signal handler is not an error.
                    if let Err(e) = rb.poll(Duration::from_millis(100)) {
                        if e.kind() != libbpf_rs::ErrorKind::Interrupted {
                            return Err(e.into());
                        }
                    }
                }
                rb.consume()?;
                Ok(())
            })
            .expect("spawning a thread");
        RingDrain {
            events,
            dropped,
            stop,
            handle,
        }
    }

    /// Stops after consuming what is left in the buffer.
    pub fn finish(self) -> Result<Vec<E>> {
        self.stop.store(true, Ordering::Relaxed);
        let r = self
            .handle
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("ring-buffer thread panicked")));
        let rest: Vec<E> = self.events.try_iter().collect();
        r.map(|()| rest)
    }
}
