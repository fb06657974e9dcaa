//! Worker threads that move data out of the kernel: a periodic map poller
//! and a ring-buffer drain. They only read and forward over bounded
//! channels; they never print. Every layer reuses both.

pub mod names;

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

/// Text rendered by a `RingLines` thread: whole lines for `events` records.
pub struct Batch {
    pub text: Vec<u8>,
    pub events: u64,
}

/// A batch is handed over once it holds this much text; lines are far
/// shorter than the slack left, so the buffer never reallocates.
const BATCH_BYTES: usize = 64 * 1024;
const BATCH_SLACK: usize = 4 * 1024;
/// Batches in flight between the threads. The ring itself holds ~140 ms
/// at 100 K records/s; 1 MiB of text (~250 bytes a line) rides out
/// another ~40 ms of a stalled write(2) (a busy disk). Bounds the memory
/// to about (BATCHES_IN_FLIGHT + 2) × 68 KiB, resident only once used.
const BATCHES_IN_FLIGHT: usize = 16;
/// Between drain passes while records keep coming. At 100 K records/s a
/// pass finds ~500 and the 1 MiB ring holds ~140 ms of them, so the
/// wait costs no headroom; waking per record (epoll) would cost a context
/// switch each and, with the consumer always caught up, a kernel wake-up
/// per record on the traced side too.
const PASS_PAUSE: Duration = Duration::from_millis(4);
/// A pass that found this many records does not pause before the next.
const BUSY_PASS: i32 = 2048;

/// A thread draining a high-rate BPF ring buffer that renders each record
/// straight into a reusable text buffer with `render` (false: nothing
/// written for it) and forwards whole batches: no allocation and no channel
/// crossing per record, one `write(2)` per batch on the receiving side.
/// Back-pressure is passed on, not dropped: when the receiver falls behind,
/// the thread waits, the ring fills, and the BPF side counts what it cannot
/// reserve (the one place events are lost, and counted).
pub struct RingLines {
    pub batches: Receiver<Batch>,
    recycle: Sender<Vec<u8>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Result<()>>>,
}

/// The drain thread's side: the batch being filled and where it goes.
struct Filling {
    text: Vec<u8>,
    events: u64,
    tx: Sender<Batch>,
    spare: Receiver<Vec<u8>>,
    /// The receiver hung up: nothing more to render.
    gone: bool,
}

impl Filling {
    /// Hands the batch over, waiting while the receiver is behind (the
    /// receiver keeps receiving until the thread ends: `finish`). Err if
    /// the receiver is gone.
    fn hand_over(&mut self) -> std::result::Result<(), ()> {
        if self.events == 0 {
            self.text.clear();
            return Ok(());
        }
        let mut next = self
            .spare
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BATCH_BYTES + BATCH_SLACK));
        next.clear();
        let b = Batch {
            text: std::mem::replace(&mut self.text, next),
            events: std::mem::take(&mut self.events),
        };
        self.tx.send(b).map_err(|_| self.gone = true)
    }
}

impl RingLines {
    pub fn spawn<R>(map: MapHandle, mut render: R) -> RingLines
    where
        R: FnMut(&[u8], &mut Vec<u8>) -> bool + Send + 'static,
    {
        let (tx, batches) = bounded(BATCHES_IN_FLIGHT);
        let (recycle, spare) = bounded(BATCHES_IN_FLIGHT + 2);
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let handle = std::thread::Builder::new()
            .name("ringbuf-lines".into())
            .spawn(move || -> Result<()> {
                let filling = std::cell::RefCell::new(Filling {
                    text: Vec::with_capacity(BATCH_BYTES + BATCH_SLACK),
                    events: 0,
                    tx,
                    spare,
                    gone: false,
                });
                let mut builder = RingBufferBuilder::new();
                builder.add(&map, |data: &[u8]| {
                    let mut f = filling.borrow_mut();
                    if render(data, &mut f.text) {
                        f.events += 1;
                    }
                    if f.text.len() >= BATCH_BYTES && f.hand_over().is_err() {
                        return -1; // the receiver is gone: stop consuming
                    }
                    0
                })?;
                let rb = builder.build()?;
                let mut busy = false;
                loop {
                    let stopping = stop2.load(Ordering::Relaxed);
                    let n = if busy || stopping {
                        rb.consume_raw()
                    } else {
                        // Idle: sleep until the kernel signals a record.
                        rb.poll_raw(Duration::from_millis(100))
                    };
                    // EINTR from our own signal handler is not an error.
                    if filling.borrow().gone {
                        return Ok(());
                    }
                    if n < 0 && n != -libc::EINTR {
                        return Err(anyhow::anyhow!(
                            "reading the ring buffer: {}",
                            std::io::Error::from_raw_os_error(-n)
                        ));
                    }
                    if filling.borrow_mut().hand_over().is_err() || stopping {
                        return Ok(());
                    }
                    busy = n > 0;
                    if busy && n < BUSY_PASS {
                        std::thread::sleep(PASS_PAUSE);
                    }
                }
            })
            .expect("spawning a thread");
        RingLines {
            batches,
            recycle,
            stop,
            handle: Some(handle),
        }
    }

    /// Gives a received batch's buffer back for reuse (no allocation in
    /// steady state).
    pub fn recycle(&self, text: Vec<u8>) {
        let _ = self.recycle.try_send(text);
    }

    /// Stops after rendering what is left in the ring; `each` gets every
    /// batch not yet received, in order.
    pub fn finish(mut self, mut each: impl FnMut(Batch)) -> Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        // Receiving until the thread hangs up lets its last sends complete.
        for b in self.batches.iter() {
            each(b);
        }
        match self.handle.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(anyhow::anyhow!("ring-buffer thread panicked")),
            None => Ok(()),
        }
    }
}

/// Dropped without `finish` (an error path): the thread still stops, at
/// its next pass or when its next batch finds nobody to receive it.
impl Drop for RingLines {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
