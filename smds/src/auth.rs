//! ES11 sessions without server state: InitiateAuthentication stores nothing, so nothing an
//! anonymous client sends can fill a table or lock devices out, and AuthenticateClient may land on
//! any node that holds the same session key.
//!
//! InitiateAuthentication issues `transactionId = version || issued (u32 seconds, big-endian) ||
//! 11 random bytes` and `serverChallenge = HMAC-SHA256(K, label || transactionId || CI key id)`,
//! first 16 bytes, where K is the first key of the session key file and the CI is the one chosen
//! (`euiccCiPKIdToBeUsed`). The version byte names which CERT.DSauth of that CI signed
//! serverSigned1 (`0x01` the one directly under the CI, `0x02` the one under SubCAs), so that
//! AuthenticateClient signs a v3 SmdsSigned2 with the same key; being part of the transactionId,
//! it is covered by the HMAC too. AuthenticateClient recomputes the challenge for the transactionId it
//! is given and the CI that issued the presented EUM certificate, under every key of the file, and
//! compares it with the serverChallenge inside euiccSigned1, which the eUICC has signed. Why this is
//! as strong as the stored session it replaces:
//!
//! - **Forgery.** Accepting a transaction needs a serverChallenge equal to the HMAC of its
//!   transactionId under K, signed by an eUICC whose chain validates. Without K nobody can compute
//!   one (HMAC-SHA256 truncated to 128 bits, the size of the stored random challenge it replaces);
//!   a transactionId that was never issued, or one with any bit changed (its issue time included),
//!   yields a different challenge than the one the eUICC signed.
//! - **Expiry.** The issue time is inside the transactionId and covered by the HMAC; a transaction
//!   older than the session lifetime, or issued more than a minute in the future, is unknown.
//! - **Cross-CI use.** The chosen CI's key identifier is part of the HMAC input, and the server
//!   recomputes it with the CI of the EUM certificate presented: an eUICC chain under another CI than
//!   the one chosen does not match (as the stored session's CI check refused it).
//! - **Replay.** After the eUICC's signature has verified, the transactionId is recorded as used in
//!   the event store until it expires (insert-if-absent, shared by every node of a cluster); a second
//!   AuthenticateClient with it is unknown. Only authenticated eUICCs can write there.
//! - **Keys.** K is 32 random bytes from a file (0600, created on first start); every node reads
//!   the same file. The file may hold several keys, one per line: the first issues, all are
//!   accepted, so a rotation (add the new key, restart the nodes, move it first, restart, later
//!   drop the old one) loses no session in flight.
//!
//! What is different: a failed AuthenticateClient no longer ends the transaction (nothing is
//! stored to end), so the genuine eUICC may retry within the lifetime; everyone else still fails
//! every time, because they cannot produce the eUICC's signature.

use crate::asn1::TransactionId;
use crate::pki::{ChainShape, CiKeyId};
use aws_lc_rs::hmac;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The first byte of a transactionId, per CERT.DSauth shape.
const VERSION_DIRECT: u8 = 0x01;
const VERSION_SUB_CAS: u8 = 0x02;
const LABEL: &[u8] = b"smds-es11-serverChallenge-v1";
/// A transaction issued this far in the future (clock differences between nodes) is still
/// accepted.
const CLOCK_SKEW_SECS: i64 = 60;

/// Why a session key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SessionKeyError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: line {line}: a session key is 64 hex digits (32 bytes)", path.display())]
    Malformed { path: PathBuf, line: usize },
    #[error("{}: no session key in the file", .0.display())]
    Empty(PathBuf),
    #[error("random number generator failed: {0}")]
    Random(getrandom::Error),
}

/// Why AuthenticateClient's transaction is not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// Not a transactionId this server issues, or expired.
    #[error("unknown, expired or already used transactionId")]
    Unknown,
    /// The serverChallenge signed by the eUICC is not the one issued for this transaction and CI.
    #[error("serverChallenge does not match")]
    Challenge,
}

/// The session keys: the first issues new transactions, all are accepted.
pub struct SessionKeys {
    keys: Vec<hmac::Key>,
    lifetime: Duration,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeys")
            .field("keys", &self.keys.len())
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

fn hex_key(line: &str) -> Option<[u8; 32]> {
    if line.len() != 64 || !line.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut k = [0u8; 32];
    for (i, b) in k.iter_mut().enumerate() {
        *b = u8::from_str_radix(line.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(k)
}

impl SessionKeys {
    /// Keys from raw bytes (tests, and what [`SessionKeys::load_or_create`] reads).
    pub fn new(keys: &[[u8; 32]], lifetime: Duration) -> Self {
        SessionKeys {
            keys: keys
                .iter()
                .map(|k| hmac::Key::new(hmac::HMAC_SHA256, k))
                .collect(),
            lifetime,
        }
    }

    /// Reads the key file, creating it (one fresh key, mode 0600) if it does not exist.
    pub fn load_or_create(path: &Path, lifetime: Duration) -> Result<Self, SessionKeyError> {
        let io = |source| SessionKeyError::Io {
            path: path.to_path_buf(),
            source,
        };
        if !path.exists() {
            let mut key = [0u8; 32];
            getrandom::fill(&mut key).map_err(SessionKeyError::Random)?;
            let text: String = key.iter().map(|b| format!("{b:02x}")).collect();
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            write_private(path, format!("{text}\n").as_bytes()).map_err(io)?;
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        let mut keys = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            keys.push(hex_key(line).ok_or(SessionKeyError::Malformed {
                path: path.to_path_buf(),
                line: i + 1,
            })?);
        }
        if keys.is_empty() {
            return Err(SessionKeyError::Empty(path.to_path_buf()));
        }
        Ok(SessionKeys::new(&keys, lifetime))
    }

    fn challenge(key: &hmac::Key, tid: &TransactionId, ci: &CiKeyId) -> [u8; 16] {
        let mut ctx = hmac::Context::with_key(key);
        ctx.update(LABEL);
        ctx.update(tid.as_bytes());
        ctx.update(ci.as_bytes());
        let tag = ctx.sign();
        let mut out = [0u8; 16];
        out.copy_from_slice(&tag.as_ref()[..16]);
        out
    }

    /// A new transaction for the chosen CI, signed for with its CERT.DSauth of `shape`, at time
    /// `now`: its transactionId and serverChallenge.
    pub fn issue(
        &self,
        ci: &CiKeyId,
        shape: ChainShape,
        now: i64,
    ) -> Result<(TransactionId, [u8; 16]), getrandom::Error> {
        let mut b = [0u8; 16];
        b[0] = match shape {
            ChainShape::Direct => VERSION_DIRECT,
            ChainShape::SubCas => VERSION_SUB_CAS,
        };
        b[1..5].copy_from_slice(&u32::try_from(now.max(0)).unwrap_or(u32::MAX).to_be_bytes());
        getrandom::fill(&mut b[5..])?;
        let tid = TransactionId::new(&b).unwrap_or_else(|| unreachable!("16 bytes"));
        let key = &self.keys[0];
        Ok((tid, Self::challenge(key, &tid, ci)))
    }

    /// Checks that `tid` was issued by a holder of these keys for `ci`, is within its lifetime at
    /// `now`, and that `challenge` is its serverChallenge; returns when the transaction expires.
    pub fn check(
        &self,
        tid: &TransactionId,
        ci: &CiKeyId,
        challenge: &[u8],
        now: i64,
    ) -> Result<i64, SessionError> {
        let expires = self.expiry(tid, now)?;
        let matches = self.keys.iter().any(|k| {
            let expected = Self::challenge(k, tid, ci);
            expected.len() == challenge.len()
                && expected
                    .iter()
                    .zip(challenge)
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
        });
        if matches {
            Ok(expires)
        } else {
            Err(SessionError::Challenge)
        }
    }

    /// Which CERT.DSauth the transaction was issued with (authentic once [`SessionKeys::check`]
    /// has accepted it); `None` for a transactionId this server does not issue.
    pub fn shape(tid: &TransactionId) -> Option<ChainShape> {
        match tid.as_bytes().first() {
            Some(&VERSION_DIRECT) => Some(ChainShape::Direct),
            Some(&VERSION_SUB_CAS) => Some(ChainShape::SubCas),
            _ => None,
        }
    }

    /// When a well-formed, unexpired transactionId expires; cheap, so AuthenticateClient asks this
    /// before any signature work.
    pub fn expiry(&self, tid: &TransactionId, now: i64) -> Result<i64, SessionError> {
        let b = tid.as_bytes();
        if b.len() != 16 || Self::shape(tid).is_none() {
            return Err(SessionError::Unknown);
        }
        let issued = i64::from(u32::from_be_bytes([b[1], b[2], b[3], b[4]]));
        let lifetime = i64::try_from(self.lifetime.as_secs()).unwrap_or(i64::MAX);
        let expires = issued.saturating_add(lifetime);
        if issued > now.saturating_add(CLOCK_SKEW_SECS) || now > expires {
            return Err(SessionError::Unknown);
        }
        Ok(expires)
    }
}

/// Creates `path` readable by its owner only and writes `data` to it.
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIFETIME: Duration = Duration::from_secs(300);

    fn ci(n: u8) -> CiKeyId {
        CiKeyId::new(vec![n; 20])
    }

    #[test]
    fn an_issued_transaction_checks_and_nothing_else_does() {
        let keys = SessionKeys::new(&[[7; 32]], LIFETIME);
        let now = 1_800_000_000;
        let (tid, challenge) = keys.issue(&ci(1), ChainShape::Direct, now).expect("issue");
        assert_eq!(
            keys.check(&tid, &ci(1), &challenge, now + 10),
            Ok(now + 300)
        );
        // Forgery: another transactionId, or one bit of it changed, has another challenge.
        let (other, _) = keys.issue(&ci(1), ChainShape::Direct, now).expect("issue");
        assert_eq!(
            keys.check(&other, &ci(1), &challenge, now),
            Err(SessionError::Challenge)
        );
        let mut b = tid.as_bytes().to_vec();
        b[15] ^= 1;
        let flipped = TransactionId::new(&b).expect("tid");
        assert_eq!(
            keys.check(&flipped, &ci(1), &challenge, now),
            Err(SessionError::Challenge)
        );
        // Without the key nobody computes a challenge: another server's key does not verify.
        let stranger = SessionKeys::new(&[[8; 32]], LIFETIME);
        assert_eq!(
            stranger.check(&tid, &ci(1), &challenge, now),
            Err(SessionError::Challenge)
        );
        // Not a transactionId of this scheme.
        let zeros = TransactionId::new(&[0; 16]).expect("tid");
        assert_eq!(keys.expiry(&zeros, now), Err(SessionError::Unknown));
    }

    #[test]
    fn expiry_and_issue_time_are_bound() {
        let keys = SessionKeys::new(&[[7; 32]], LIFETIME);
        let now = 1_800_000_000;
        let (tid, challenge) = keys.issue(&ci(1), ChainShape::Direct, now).expect("issue");
        assert_eq!(
            keys.check(&tid, &ci(1), &challenge, now + 301),
            Err(SessionError::Unknown)
        );
        assert_eq!(
            keys.check(&tid, &ci(1), &challenge, now - 61),
            Err(SessionError::Unknown),
            "issued in the future"
        );
        // Moving the issue time forward to extend the lifetime breaks the challenge.
        let mut b = tid.as_bytes().to_vec();
        b[1..5].copy_from_slice(&((now + 200) as u32).to_be_bytes());
        let later = TransactionId::new(&b).expect("tid");
        assert_eq!(
            keys.check(&later, &ci(1), &challenge, now + 350),
            Err(SessionError::Challenge)
        );
    }

    #[test]
    fn the_ci_is_bound() {
        let keys = SessionKeys::new(&[[7; 32]], LIFETIME);
        let (tid, challenge) = keys
            .issue(&ci(1), ChainShape::Direct, 1_800_000_000)
            .expect("issue");
        assert_eq!(
            keys.check(&tid, &ci(2), &challenge, 1_800_000_000),
            Err(SessionError::Challenge)
        );
    }

    #[test]
    fn the_ds_auth_shape_is_carried_and_bound() {
        let keys = SessionKeys::new(&[[7; 32]], LIFETIME);
        let now = 1_800_000_000;
        let (tid, challenge) = keys.issue(&ci(1), ChainShape::SubCas, now).expect("issue");
        assert_eq!(SessionKeys::shape(&tid), Some(ChainShape::SubCas));
        assert_eq!(keys.check(&tid, &ci(1), &challenge, now), Ok(now + 300));
        // The other shape's version byte on the same transaction: not what was issued.
        let mut b = tid.as_bytes().to_vec();
        b[0] = 0x01;
        let swapped = TransactionId::new(&b).expect("tid");
        assert_eq!(SessionKeys::shape(&swapped), Some(ChainShape::Direct));
        assert_eq!(
            keys.check(&swapped, &ci(1), &challenge, now),
            Err(SessionError::Challenge)
        );
        b[0] = 0x03;
        let unknown = TransactionId::new(&b).expect("tid");
        assert_eq!(keys.expiry(&unknown, now), Err(SessionError::Unknown));
    }

    #[test]
    fn rotation_keeps_sessions_in_flight() {
        let old = SessionKeys::new(&[[1; 32]], LIFETIME);
        let now = 1_800_000_000;
        let (tid, challenge) = old.issue(&ci(1), ChainShape::Direct, now).expect("issue");
        let rotated = SessionKeys::new(&[[2; 32], [1; 32]], LIFETIME);
        assert!(rotated.check(&tid, &ci(1), &challenge, now).is_ok());
        let (new_tid, new_challenge) = rotated
            .issue(&ci(1), ChainShape::Direct, now)
            .expect("issue");
        assert!(rotated.check(&new_tid, &ci(1), &new_challenge, now).is_ok());
        assert_eq!(
            old.check(&new_tid, &ci(1), &new_challenge, now),
            Err(SessionError::Challenge),
            "new sessions use the new key"
        );
    }

    #[test]
    fn the_key_file_is_created_private_and_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("session.key");
        let a = SessionKeys::load_or_create(&path, LIFETIME).expect("created");
        let b = SessionKeys::load_or_create(&path, LIFETIME).expect("read");
        let (tid, challenge) = a
            .issue(&ci(1), ChainShape::Direct, 1_800_000_000)
            .expect("issue");
        assert!(b.check(&tid, &ci(1), &challenge, 1_800_000_000).is_ok());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o077, 0, "mode {mode:o}");
        }
        std::fs::write(&path, "not a key\n").expect("write");
        let err = SessionKeys::load_or_create(&path, LIFETIME).expect_err("malformed");
        assert!(err.to_string().contains("line 1"), "{err}");
    }
}
