//! Sessions of the SGP.22 common mutual authentication (ES11): created by InitiateAuthentication,
//! taken exactly once by AuthenticateClient. They live in memory, expire after a lifetime, and are
//! bounded in number; a full table refuses new sessions rather than growing.

use crate::asn1::TransactionId;
use crate::pki::CiKeyId;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One authentication in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub transaction_id: TransactionId,
    pub server_challenge: [u8; 16],
    pub euicc_challenge: [u8; 16],
    /// The CI chosen (`euiccCiPKIdToBeUsed`).
    pub ci: CiKeyId,
    pub created: Instant,
}

/// Why a session could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("too many authentications in progress ({0}); try again later")]
    Full(usize),
}

/// The session table.
pub struct Sessions {
    map: Mutex<HashMap<TransactionId, Session>>,
    lifetime: Duration,
    max: usize,
}

impl Sessions {
    pub fn new(lifetime: Duration, max: usize) -> Self {
        Sessions {
            map: Mutex::new(HashMap::new()),
            lifetime,
            max: max.max(1),
        }
    }

    /// Stores a new session (the caller generated a fresh transaction id).
    pub fn insert(&self, session: Session) -> Result<(), SessionError> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= self.max {
            let lifetime = self.lifetime;
            map.retain(|_, s| s.created.elapsed() < lifetime);
            if map.len() >= self.max {
                return Err(SessionError::Full(self.max));
            }
        }
        map.insert(session.transaction_id, session);
        Ok(())
    }

    /// Removes and returns a live session; an unknown, used or expired id gives `None`.
    pub fn take(&self, id: &TransactionId) -> Option<Session> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(id)
            .filter(|s| s.created.elapsed() < self.lifetime)
    }

    /// Drops expired sessions (called periodically).
    pub fn sweep(&self) {
        let lifetime = self.lifetime;
        if let Ok(mut m) = self.map.lock() {
            m.retain(|_, s| s.created.elapsed() < lifetime);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(n: u8) -> Session {
        Session {
            transaction_id: TransactionId::new(&[n; 16]).expect("valid"),
            server_challenge: [n; 16],
            euicc_challenge: [n; 16],
            ci: CiKeyId::new(vec![n; 20]),
            created: Instant::now(),
        }
    }

    #[test]
    fn single_use_bounded_and_expiring() {
        let s = Sessions::new(Duration::from_secs(60), 2);
        s.insert(session(1)).expect("room");
        s.insert(session(2)).expect("room");
        assert_eq!(s.insert(session(3)), Err(SessionError::Full(2)));
        let id = TransactionId::new(&[1; 16]).expect("valid");
        assert!(s.take(&id).is_some());
        assert!(s.take(&id).is_none(), "a session is used once");
        s.insert(session(3)).expect("room again");

        let short = Sessions::new(Duration::from_millis(1), 1);
        short.insert(session(1)).expect("room");
        std::thread::sleep(Duration::from_millis(5));
        assert!(short.take(&id).is_none(), "expired");
        short.insert(session(2)).expect("expired ones make room");
    }
}
