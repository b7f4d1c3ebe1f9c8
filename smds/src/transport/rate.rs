//! A token bucket per client address, for what anyone may call without authenticating and that
//! must not become an oracle at line rate (ES11.CheckEvent). Its memory is bounded: past
//! [`MAX_ADDRESSES`] it forgets the buckets that have refilled, and when none has, it lets the
//! request through rather than refuse an address it cannot track (a device must never be locked
//! out by others filling the table).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// Most addresses tracked at once.
pub const MAX_ADDRESSES: usize = 4096;

pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl RateLimiter {
    /// `per_second` requests a second on average, `burst` at once.
    pub fn new(per_second: f64, burst: f64) -> Self {
        RateLimiter {
            per_second,
            burst,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `addr` may make one more request now.
    pub fn allow(&self, addr: IpAddr) -> bool {
        self.allow_at(addr, Instant::now())
    }

    fn allow_at(&self, addr: IpAddr, now: Instant) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let refill = |(tokens, at): (f64, Instant)| {
            (tokens + now.saturating_duration_since(at).as_secs_f64() * self.per_second)
                .min(self.burst)
        };
        if !buckets.contains_key(&addr) && buckets.len() >= MAX_ADDRESSES {
            buckets.retain(|_, b| refill(*b) < self.burst);
            if buckets.len() >= MAX_ADDRESSES {
                return true;
            }
        }
        let tokens = buckets.get(&addr).map_or(self.burst, |b| refill(*b));
        if tokens < 1.0 {
            buckets.insert(addr, (tokens, now));
            return false;
        }
        buckets.insert(addr, (tokens - 1.0, now));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_then_the_rate_per_address() {
        let l = RateLimiter::new(2.0, 3.0);
        let (a, b): (IpAddr, IpAddr) = (
            "192.0.2.1".parse().expect("ip"),
            "192.0.2.2".parse().expect("ip"),
        );
        let t0 = Instant::now();
        assert!((0..3).all(|_| l.allow_at(a, t0)));
        assert!(!l.allow_at(a, t0), "burst spent");
        assert!(l.allow_at(b, t0), "another address is not affected");
        assert!(
            l.allow_at(a, t0 + Duration::from_millis(500)),
            "one token after 0.5 s at 2/s"
        );
        assert!(!l.allow_at(a, t0 + Duration::from_millis(500)));
    }

    #[test]
    fn a_full_table_never_locks_an_address_out() {
        let l = RateLimiter::new(1.0, 1.0);
        let t0 = Instant::now();
        for i in 0..MAX_ADDRESSES as u32 {
            assert!(l.allow_at(IpAddr::from(i.to_be_bytes()), t0));
        }
        let newcomer: IpAddr = "2001:db8::1".parse().expect("ip");
        assert!(l.allow_at(newcomer, t0), "untracked, let through");
        // Once the others have refilled, they are forgotten and the newcomer is tracked.
        let later = t0 + Duration::from_secs(2);
        assert!(l.allow_at(newcomer, later));
        assert!(!l.allow_at(newcomer, later));
    }
}
