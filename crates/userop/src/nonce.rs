//! Nonce lanes: one 192-bit EntryPoint nonce key per session or agent, with an allocator of
//! our own (`reserve` / `commit` / `release`) rather than a cache that burns nonces on failed
//! sends.
//!
//! Per lane the allocator holds the next fresh sequence, the sequences handed out and not yet
//! settled, and the ones released (reused lowest first, so a failure leaves no gap that would
//! block later operations with AA25). The sequence comes from `EntryPoint.getNonce(sender,
//! key)` on first use and on [`NonceLanes::resync`] (after AA25).

use crate::error::{Error, Result};
use alloy::{
    primitives::{Address, U256, aliases::U192},
    providers::Provider,
};
use sak_contracts::IEntryPoint;
use std::{
    collections::{BTreeSet, HashMap},
    future::Future,
    sync::{Arc, Mutex},
};

/// A nonce lane: an account and a 192-bit key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Lane {
    /// The account.
    pub sender: Address,
    /// The EntryPoint nonce key.
    pub key: U192,
}

impl Lane {
    /// Lane `key` of `sender`.
    pub const fn new(sender: Address, key: U192) -> Self {
        Self { sender, key }
    }

    /// The full nonce of `sequence` in this lane: `key << 64 | sequence`.
    pub fn nonce(&self, sequence: u64) -> U256 {
        (U256::from(self.key) << 64) | U256::from(sequence)
    }
}

/// Where a lane's sequence comes from.
pub trait NonceSource: Send + Sync {
    /// The next sequence the EntryPoint accepts in `lane`.
    fn next_sequence(&self, lane: Lane) -> impl Future<Output = Result<u64>> + Send;
}

/// `EntryPoint.getNonce(sender, key)` through a provider.
#[derive(Debug, Clone)]
pub struct EntryPointNonces<P> {
    provider: P,
    entry_point: Address,
}

impl<P> EntryPointNonces<P> {
    /// Reads `entry_point` through `provider`.
    pub const fn new(provider: P, entry_point: Address) -> Self {
        Self { provider, entry_point }
    }
}

impl<P: Provider + Send + Sync> NonceSource for EntryPointNonces<P> {
    async fn next_sequence(&self, lane: Lane) -> Result<u64> {
        let nonce = IEntryPoint::new(self.entry_point, &self.provider)
            .getNonce(lane.sender, lane.key)
            .call()
            .await
            .map_err(|e| Error::from_contract("EntryPoint.getNonce", e))?;
        Ok(crate::hash::split_nonce(nonce).1)
    }
}

#[derive(Debug, Default)]
struct LaneState {
    /// Next fresh sequence.
    next: u64,
    /// Handed out, not settled.
    in_flight: BTreeSet<u64>,
    /// Released, to hand out again (lowest first).
    released: BTreeSet<u64>,
    /// Sequences below this are used on chain: releasing them is a no-op.
    floor: u64,
}

impl LaneState {
    fn take(&mut self) -> u64 {
        let seq = self.released.pop_first().unwrap_or_else(|| {
            self.next += 1;
            self.next - 1
        });
        self.in_flight.insert(seq);
        seq
    }

    fn release(&mut self, seq: u64) {
        if self.in_flight.remove(&seq) && seq >= self.floor {
            self.released.insert(seq);
        }
        // Released sequences at the top are simply not handed out yet.
        while self.next > self.floor && self.released.remove(&(self.next - 1)) {
            self.next -= 1;
        }
    }

    fn commit(&mut self, seq: u64) {
        // Not a floor: a lower sequence still in flight may yet fail and be handed out again
        // (the EntryPoint then includes it before the higher ones, which wait for it).
        self.in_flight.remove(&seq);
    }

    /// The chain says `chain_next` is next: drop what is below, and make every unused
    /// sequence between it and our `next` available again.
    fn resync(&mut self, chain_next: u64) {
        self.floor = chain_next;
        self.released.retain(|&s| s >= chain_next);
        if self.next < chain_next {
            self.next = chain_next;
        }
        for s in chain_next..self.next {
            if !self.in_flight.contains(&s) {
                self.released.insert(s);
            }
        }
        while self.next > self.floor && self.released.remove(&(self.next - 1)) {
            self.next -= 1;
        }
    }
}

#[derive(Debug, Default)]
struct Slot {
    /// `None` until read from the source.
    state: Mutex<Option<LaneState>>,
    /// Serialises reads from the source for this lane.
    init: tokio::sync::Mutex<()>,
}

/// The allocator. Cheap to clone (shared state); safe to use from many tasks.
#[derive(Debug)]
pub struct NonceLanes<S> {
    source: Arc<S>,
    lanes: Arc<Mutex<HashMap<Lane, Arc<Slot>>>>,
}

impl<S> Clone for NonceLanes<S> {
    fn clone(&self) -> Self {
        Self { source: Arc::clone(&self.source), lanes: Arc::clone(&self.lanes) }
    }
}

impl<S: NonceSource> NonceLanes<S> {
    /// An allocator reading sequences from `source`.
    pub fn new(source: S) -> Self {
        Self { source: Arc::new(source), lanes: Arc::default() }
    }

    fn slot(&self, lane: Lane) -> Arc<Slot> {
        Arc::clone(self.lanes.lock().unwrap().entry(lane).or_default())
    }

    /// Reserves the next nonce of `lane`: a released one if any (lowest first), else a fresh
    /// one. No other reservation gets the same nonce until this one is released.
    pub async fn reserve(&self, lane: Lane) -> Result<Reservation> {
        let slot = self.slot(lane);
        let ready = slot.state.lock().unwrap().as_mut().map(LaneState::take);
        if let Some(sequence) = ready {
            return Ok(Reservation { lane, sequence, slot, settled: false });
        }
        let sequence = {
            let _init = slot.init.lock().await;
            if slot.state.lock().unwrap().is_none() {
                let next = self.source.next_sequence(lane).await?;
                let mut state = slot.state.lock().unwrap();
                if state.is_none() {
                    *state = Some(LaneState { next, floor: next, ..LaneState::default() });
                }
            }
            slot.state.lock().unwrap().as_mut().expect("initialised").take()
        };
        Ok(Reservation { lane, sequence, slot, settled: false })
    }

    /// Reads the lane's sequence from the source again (after AA25): sequences below it are
    /// dropped, unused ones above it are handed out again.
    pub async fn resync(&self, lane: Lane) -> Result<u64> {
        let slot = self.slot(lane);
        let _init = slot.init.lock().await;
        let next = self.source.next_sequence(lane).await?;
        let mut state = slot.state.lock().unwrap();
        match state.as_mut() {
            Some(s) => s.resync(next),
            None => *state = Some(LaneState { next, floor: next, ..LaneState::default() }),
        }
        Ok(next)
    }

    /// What the lane looks like now: (next fresh sequence, in flight, released).
    pub fn snapshot(&self, lane: Lane) -> Option<LaneSnapshot> {
        let slot = self.lanes.lock().unwrap().get(&lane).cloned()?;
        let state = slot.state.lock().unwrap();
        state.as_ref().map(|s| LaneSnapshot {
            next: s.next,
            in_flight: s.in_flight.iter().copied().collect(),
            released: s.released.iter().copied().collect(),
        })
    }
}

/// A lane's allocator state, for tests and diagnostics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaneSnapshot {
    /// The next fresh sequence.
    pub next: u64,
    /// Handed out, not settled.
    pub in_flight: Vec<u64>,
    /// Released, waiting to be handed out again.
    pub released: Vec<u64>,
}

/// A reserved nonce. Settle it with [`Reservation::commit`] once the operation is on chain
/// (its nonce used, whatever the execution's outcome), or [`Reservation::release`] when it
/// certainly was not sent. Dropping it unsettled releases it.
#[derive(Debug)]
#[must_use = "commit or release the reservation"]
pub struct Reservation {
    lane: Lane,
    sequence: u64,
    slot: Arc<Slot>,
    settled: bool,
}

impl Reservation {
    /// The lane.
    pub const fn lane(&self) -> Lane {
        self.lane
    }

    /// The 64-bit sequence.
    pub const fn sequence(&self) -> u64 {
        self.sequence
    }

    /// The full nonce to put in the operation.
    pub fn nonce(&self) -> U256 {
        self.lane.nonce(self.sequence)
    }

    /// The nonce is used on chain.
    pub fn commit(mut self) {
        self.settled = true;
        if let Some(s) = self.slot.state.lock().unwrap().as_mut() {
            s.commit(self.sequence);
        }
    }

    /// The operation was not sent (or certainly will not land): hand the nonce out again.
    pub fn release(mut self) {
        self.settled = true;
        self.release_inner();
    }

    fn release_inner(&self) {
        if let Some(s) = self.slot.state.lock().unwrap().as_mut() {
            s.release(self.sequence);
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.settled {
            self.release_inner();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A chain whose next sequence is set by the test.
    #[derive(Debug, Default)]
    struct Fake {
        next: AtomicU64,
        reads: AtomicU64,
    }

    impl NonceSource for Arc<Fake> {
        async fn next_sequence(&self, _lane: Lane) -> Result<u64> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            Ok(self.next.load(Ordering::SeqCst))
        }
    }

    fn lane(key: u64) -> Lane {
        Lane::new(Address::repeat_byte(1), U192::from(key))
    }

    #[tokio::test]
    async fn first_use_reads_the_chain_then_counts_locally() {
        let fake = Arc::new(Fake::default());
        fake.next.store(5, Ordering::SeqCst);
        let lanes = NonceLanes::new(Arc::clone(&fake));
        let a = lanes.reserve(lane(7)).await.unwrap();
        let b = lanes.reserve(lane(7)).await.unwrap();
        assert_eq!((a.sequence(), b.sequence()), (5, 6));
        assert_eq!(a.nonce(), (U256::from(7) << 64) | U256::from(5));
        a.commit();
        b.commit();
        assert_eq!(lanes.reserve(lane(7)).await.unwrap().sequence(), 7);
        assert_eq!(fake.reads.load(Ordering::SeqCst), 1, "one read per lane");
    }

    #[tokio::test]
    async fn released_nonces_are_reused_lowest_first() {
        let lanes = NonceLanes::new(Arc::new(Fake::default()));
        let mut r = Vec::new();
        for _ in 0..4 {
            r.push(lanes.reserve(lane(0)).await.unwrap());
        }
        let r3 = r.pop().unwrap();
        let r2 = r.pop().unwrap();
        let r1 = r.pop().unwrap();
        r.pop().unwrap().commit();
        r2.release();
        drop(r1); // unsettled: released
        let a = lanes.reserve(lane(0)).await.unwrap();
        let b = lanes.reserve(lane(0)).await.unwrap();
        let c = lanes.reserve(lane(0)).await.unwrap();
        assert_eq!((a.sequence(), b.sequence(), c.sequence()), (1, 2, 4));
        c.release();
        r3.release();
        assert_eq!(
            lanes.snapshot(lane(0)).unwrap(),
            LaneSnapshot { next: 3, in_flight: vec![1, 2], released: vec![] },
            "released at the top: not a gap, just not handed out"
        );
        a.commit();
        b.commit();
    }

    #[tokio::test]
    async fn resync_skips_what_the_chain_used_and_fills_gaps() {
        let fake = Arc::new(Fake::default());
        let lanes = NonceLanes::new(Arc::clone(&fake));
        let a = lanes.reserve(lane(1)).await.unwrap(); // 0
        let b = lanes.reserve(lane(1)).await.unwrap(); // 1
        let c = lanes.reserve(lane(1)).await.unwrap(); // 2
        // Someone else used 0 and 1 (AA25 for ours).
        fake.next.store(2, Ordering::SeqCst);
        assert_eq!(lanes.resync(lane(1)).await.unwrap(), 2);
        a.release();
        b.release();
        assert_eq!(lanes.snapshot(lane(1)).unwrap().released, Vec::<u64>::new());
        c.release();
        assert_eq!(lanes.reserve(lane(1)).await.unwrap().sequence(), 2);
        // The chain moved ahead of us: fresh sequences start there.
        fake.next.store(10, Ordering::SeqCst);
        lanes.resync(lane(1)).await.unwrap();
        assert_eq!(lanes.reserve(lane(1)).await.unwrap().sequence(), 10);
    }

    /// Many tasks over several lanes, each send failing at random: no nonce is held by two
    /// reservations at once, failed ones are handed out again, and in the end each lane's
    /// used nonces are exactly 0..n with nothing left over.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn stress_with_injected_send_failures() {
        const LANES: u64 = 4;
        const TASKS_PER_LANE: usize = 8;
        const OPS_PER_TASK: usize = 25;
        let lanes = NonceLanes::new(Arc::new(Fake::default()));
        let held: Arc<Mutex<BTreeSet<(u64, u64)>>> = Arc::default();
        let used: Arc<Mutex<BTreeSet<(u64, u64)>>> = Arc::default();
        let released: Arc<Mutex<BTreeSet<(u64, u64)>>> = Arc::default();
        let reused = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for l in 0..LANES {
            for t in 0..TASKS_PER_LANE {
                let (lanes, held, used, released, reused, failures) = (
                    lanes.clone(),
                    held.clone(),
                    used.clone(),
                    released.clone(),
                    reused.clone(),
                    failures.clone(),
                );
                tasks.push(tokio::spawn(async move {
                    let mut rng = (l * 1000 + t as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                    let mut done = 0;
                    while done < OPS_PER_TASK {
                        let r = lanes.reserve(lane(l)).await.unwrap();
                        let key = (l, r.sequence());
                        assert!(held.lock().unwrap().insert(key), "nonce {key:?} handed out twice");
                        if released.lock().unwrap().contains(&key) {
                            reused.fetch_add(1, Ordering::SeqCst);
                        }
                        tokio::task::yield_now().await;
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        let fails = rng.is_multiple_of(4);
                        held.lock().unwrap().remove(&key);
                        if fails {
                            failures.fetch_add(1, Ordering::SeqCst);
                            released.lock().unwrap().insert(key);
                            r.release();
                        } else {
                            assert!(used.lock().unwrap().insert(key), "nonce {key:?} used twice");
                            r.commit();
                            done += 1;
                        }
                    }
                }));
            }
        }
        for t in tasks {
            t.await.unwrap();
        }
        let used = used.lock().unwrap();
        let n = (TASKS_PER_LANE * OPS_PER_TASK) as u64;
        for l in 0..LANES {
            let seqs: Vec<u64> = used.iter().filter(|(ll, _)| *ll == l).map(|(_, s)| *s).collect();
            assert_eq!(seqs, (0..n).collect::<Vec<_>>(), "lane {l}: used nonces have gaps");
            assert_eq!(
                lanes.snapshot(lane(l)).unwrap(),
                LaneSnapshot { next: n, in_flight: vec![], released: vec![] }
            );
        }
        assert!(failures.load(Ordering::SeqCst) > 50, "the test injected failures");
        assert!(reused.load(Ordering::SeqCst) > 0, "released nonces were handed out again");
    }
}
