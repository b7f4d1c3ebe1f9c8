//! The table of open client connections, so that holding a connection slot costs an attacker
//! real work: a per-source-address limit, a deadline until the first complete request, an idle
//! timeout between requests (for HTTP/2 too: only requests count as activity, not PINGs), a
//! maximum age, and, when the table is nearly full, the connection idle the longest is closed to
//! make room instead of refusing the newcomer. The listener admits connections here; the request
//! service marks requests begun and ended; each connection's task asks [`ConnState::verdict`]
//! what to do. Also the server-wide drain at shutdown.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// The connection limits, from `[limits]`.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub max_per_ip: usize,
    pub first_request: Duration,
    pub idle: Duration,
    pub max_age: Duration,
}

impl From<&crate::config::Limits> for ConnectionLimits {
    fn from(l: &crate::config::Limits) -> Self {
        let secs = |s: u64| Duration::from_secs(s.max(1));
        ConnectionLimits {
            max_connections: l.max_connections.max(1),
            max_per_ip: l.max_connections_per_ip.max(1),
            first_request: secs(l.first_request_timeout_secs),
            idle: secs(l.idle_timeout_secs),
            max_age: secs(l.max_connection_age_secs),
        }
    }
}

/// Why a connection was refused at accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Every slot holds a connection that is busy.
    Full,
    /// The source address holds its share of the slots.
    PerAddress,
}

/// What a connection's task should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Keep,
    /// Close: finish what is in flight, accept nothing new.
    Close(CloseReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// No complete request within the first-request deadline.
    NoRequest,
    Idle,
    MaxAge,
    /// Closed to make room for a new connection (the one idle the longest).
    Evicted,
    Shutdown,
}

impl CloseReason {
    pub fn label(self) -> &'static str {
        match self {
            CloseReason::NoRequest => "no_request",
            CloseReason::Idle => "idle",
            CloseReason::MaxAge => "max_age",
            CloseReason::Evicted => "evicted",
            CloseReason::Shutdown => "shutdown",
        }
    }
}

/// One connection's activity, shared by its task and its request service.
pub struct ConnState {
    opened: Instant,
    epoch: Instant,
    in_flight: AtomicUsize,
    served: AtomicU64,
    /// Milliseconds since `epoch` of the last request's end (or the accept).
    last_active_ms: AtomicU64,
    evicted: AtomicBool,
    /// Woken when the connection is told to close from outside (eviction, shutdown).
    pub close: Notify,
}

impl ConnState {
    fn new(epoch: Instant) -> Self {
        let now = Instant::now();
        ConnState {
            opened: now,
            epoch,
            in_flight: AtomicUsize::new(0),
            served: AtomicU64::new(0),
            last_active_ms: AtomicU64::new(ms_since(epoch, now)),
            evicted: AtomicBool::new(false),
            close: Notify::new(),
        }
    }

    /// A request has arrived (its head is parsed).
    pub fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
    }

    /// A request has been answered.
    pub fn request_finished(&self) {
        self.served.fetch_add(1, Ordering::AcqRel);
        self.last_active_ms
            .store(ms_since(self.epoch, Instant::now()), Ordering::Release);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    fn idle_for(&self, now: Instant) -> Option<Duration> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let last = self.last_active_ms.load(Ordering::Acquire);
        Some(Duration::from_millis(
            ms_since(self.epoch, now).saturating_sub(last),
        ))
    }

    /// What the connection should do at `now` under `limits`.
    pub fn verdict(&self, limits: &ConnectionLimits, now: Instant) -> Verdict {
        if self.evicted.load(Ordering::Acquire) {
            return Verdict::Close(CloseReason::Evicted);
        }
        let age = now.saturating_duration_since(self.opened);
        let Some(idle) = self.idle_for(now) else {
            return Verdict::Keep;
        };
        if self.served.load(Ordering::Acquire) == 0 {
            if age >= limits.first_request {
                return Verdict::Close(CloseReason::NoRequest);
            }
        } else if idle >= limits.idle {
            return Verdict::Close(CloseReason::Idle);
        }
        if age >= limits.max_age {
            return Verdict::Close(CloseReason::MaxAge);
        }
        Verdict::Keep
    }

    /// When the next deadline can fall, at the earliest.
    pub fn next_check(&self, limits: &ConnectionLimits) -> Duration {
        limits
            .first_request
            .min(limits.idle)
            .min(limits.max_age)
            .clamp(Duration::from_millis(100), Duration::from_secs(1))
    }
}

fn ms_since(epoch: Instant, t: Instant) -> u64 {
    u64::try_from(t.saturating_duration_since(epoch).as_millis()).unwrap_or(u64::MAX)
}

struct Entry {
    ip: IpAddr,
    state: Arc<ConnState>,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    open: HashMap<u64, Entry>,
    per_ip: HashMap<IpAddr, usize>,
}

/// The open connections.
pub struct Connections {
    limits: ConnectionLimits,
    epoch: Instant,
    table: Mutex<Table>,
    drained: Notify,
}

/// A slot in the table; dropping it frees the slot.
pub struct Slot {
    id: u64,
    pub state: Arc<ConnState>,
    owner: Arc<Connections>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.owner.release(self.id);
    }
}

impl Connections {
    pub fn new(limits: ConnectionLimits) -> Arc<Self> {
        Arc::new(Connections {
            limits,
            epoch: Instant::now(),
            table: Mutex::new(Table::default()),
            drained: Notify::new(),
        })
    }

    pub fn limits(&self) -> &ConnectionLimits {
        &self.limits
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a connection from `ip`. From nine tenths full on, a connection is closed to make
    /// room when that makes the table fairer: the victim is an idle connection (no request in
    /// flight; a handshake that has not finished counts as idle since the accept) of the address
    /// holding the most connections, the one idle the longest, and only if the newcomer's address
    /// holds fewer connections than the victim's will after the eviction. So a device from an
    /// address with few connections gets in by displacing a flood from one address, while the
    /// flood cannot churn its own connections. Only when no such victim exists and every slot is
    /// taken is the newcomer refused. Returns the slot and whether someone was evicted for it.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<(Slot, bool), Refusal> {
        let mut t = self.lock();
        let held = t.per_ip.get(&ip).copied().unwrap_or(0);
        if held >= self.limits.max_per_ip.max(1) {
            return Err(Refusal::PerAddress);
        }
        let max = self.limits.max_connections.max(1);
        let mut evicted = false;
        if t.open.len() >= max - max / 10 {
            match victim(&t, held, Instant::now()) {
                Some(id) => {
                    if let Some(e) = t.open.remove(&id) {
                        decrement(&mut t.per_ip, e.ip);
                        e.state.evicted.store(true, Ordering::Release);
                        e.state.close.notify_one();
                        evicted = true;
                    }
                }
                None if t.open.len() >= max => return Err(Refusal::Full),
                None => {}
            }
        }
        let id = t.next_id;
        t.next_id += 1;
        let state = Arc::new(ConnState::new(self.epoch));
        t.open.insert(
            id,
            Entry {
                ip,
                state: state.clone(),
            },
        );
        *t.per_ip.entry(ip).or_default() += 1;
        Ok((
            Slot {
                id,
                state,
                owner: self.clone(),
            },
            evicted,
        ))
    }

    fn release(&self, id: u64) {
        let mut t = self.lock();
        if let Some(e) = t.open.remove(&id) {
            decrement(&mut t.per_ip, e.ip);
        }
        if t.open.is_empty() {
            self.drained.notify_waiters();
        }
    }

    /// Connections currently holding a slot.
    pub fn len(&self) -> usize {
        self.lock().open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Tells every connection to close (finishing what is in flight) and waits until all have,
    /// or `within` has passed; returns how many were still open.
    pub async fn drain(&self, within: Duration) -> usize {
        let states: Vec<Arc<ConnState>> =
            self.lock().open.values().map(|e| e.state.clone()).collect();
        for s in &states {
            s.evicted.store(true, Ordering::Release);
            s.close.notify_one();
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let waiting = self.drained.notified();
            if self.is_empty() {
                return 0;
            }
            if tokio::time::timeout_at(deadline, waiting).await.is_err() {
                return self.len();
            }
        }
    }
}

/// The connection to close for a newcomer whose address holds `newcomer_holds` connections: the
/// longest-idle idle connection of the address holding the most idle connections, if evicting it
/// leaves that address still holding more than the newcomer will.
fn victim(t: &Table, newcomer_holds: usize, now: Instant) -> Option<u64> {
    let mut idle_by_ip: HashMap<IpAddr, (usize, u64, Duration)> = HashMap::new();
    for (id, e) in &t.open {
        if let Some(idle) = e.state.idle_for(now) {
            let slot = idle_by_ip.entry(e.ip).or_insert((0, *id, idle));
            slot.0 += 1;
            if idle > slot.2 {
                (slot.1, slot.2) = (*id, idle);
            }
        }
    }
    let (ip, (_, id, _)) = idle_by_ip
        .into_iter()
        .max_by_key(|(ip, (idle_count, _, idle))| {
            (t.per_ip.get(ip).copied().unwrap_or(0), *idle_count, *idle)
        })?;
    let victim_holds = t.per_ip.get(&ip).copied().unwrap_or(0);
    (newcomer_holds + 1 < victim_holds).then_some(id)
}

fn decrement(per_ip: &mut HashMap<IpAddr, usize>, ip: IpAddr) {
    if let Some(n) = per_ip.get_mut(&ip) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            per_ip.remove(&ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: usize, per_ip: usize) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: max,
            max_per_ip: per_ip,
            first_request: Duration::from_secs(10),
            idle: Duration::from_secs(30),
            max_age: Duration::from_secs(300),
        }
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn per_address_limit() {
        let c = Connections::new(limits(100, 2));
        let _a1 = c.admit(A).expect("first");
        let _a2 = c.admit(A).expect("second");
        assert_eq!(c.admit(A).err(), Some(Refusal::PerAddress));
        assert!(c.admit(B).is_ok(), "other addresses are not affected");
    }

    const C: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 3));

    #[test]
    fn a_flood_from_one_address_makes_room_for_others_but_not_for_itself() {
        let c = Connections::new(limits(10, 100));
        // A holds every slot with idle connections.
        let flood: Vec<Slot> = (0..10).map(|_| c.admit(A).expect("room").0).collect();
        // A cannot churn its own connections.
        assert_eq!(c.admit(A).err(), Some(Refusal::Full));
        // B gets in: A's longest-idle connection is closed for it.
        let (b, evicted) = c.admit(B).expect("evicts one of A's");
        assert!(evicted);
        let now = Instant::now();
        let closed = flood
            .iter()
            .filter(|s| s.state.verdict(c.limits(), now) == Verdict::Close(CloseReason::Evicted))
            .count();
        assert_eq!(
            closed, 1,
            "exactly one of the flood's connections is closed"
        );
        // Busy connections are never evicted.
        for s in &flood {
            s.state.request_started();
        }
        b.state.request_started();
        assert_eq!(c.admit(C).err(), Some(Refusal::Full));
        drop(flood);
        assert!(c.admit(C).is_ok());
    }

    #[test]
    fn one_connection_per_address_cannot_be_displaced() {
        let c = Connections::new(limits(3, 100));
        let _held: Vec<_> = [A, B, C]
            .iter()
            .map(|ip| c.admit(*ip).expect("room"))
            .collect();
        assert_eq!(
            c.admit(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 9)))
                .err(),
            Some(Refusal::Full)
        );
    }

    #[test]
    fn deadlines() {
        let l = limits(10, 10);
        let s = ConnState::new(Instant::now());
        let t0 = s.opened;
        assert_eq!(s.verdict(&l, t0 + Duration::from_secs(9)), Verdict::Keep);
        assert_eq!(
            s.verdict(&l, t0 + Duration::from_secs(10)),
            Verdict::Close(CloseReason::NoRequest)
        );
        s.request_started();
        assert_eq!(
            s.verdict(&l, t0 + Duration::from_secs(20)),
            Verdict::Keep,
            "busy"
        );
        s.request_finished();
        let after = Instant::now();
        assert_eq!(
            s.verdict(&l, after + Duration::from_secs(29)),
            Verdict::Keep
        );
        assert_eq!(
            s.verdict(&l, after + Duration::from_secs(31)),
            Verdict::Close(CloseReason::Idle)
        );
        let young = ConnState::new(Instant::now());
        young.request_started();
        young.request_finished();
        let t = young.opened + Duration::from_secs(301);
        // Idle past the idle timeout is reported first; an active one past max age also closes.
        assert_ne!(young.verdict(&l, t), Verdict::Keep);
    }
}
