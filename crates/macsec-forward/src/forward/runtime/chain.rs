//! The forwarder's key chain at run time: the keys, the chain's clock, the policy, the
//! warnings before the last key ends, and re-reading the keys (SIGHUP, `reload`).

use crate::config::mka::{MkaSettings, Policy};
use crate::config::{Config, KeyFilePolicy};
use crate::keychain::{rfc3339, ChainClock, ChainEnd, KeyChain};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Warnings before the chain's last primary key ends: at `expiry_warning`, then at
/// these (when shorter).
const LATER_WARNINGS: [Duration; 2] = [Duration::from_secs(3600), Duration::from_secs(300)];

/// The key chain and what goes with it.
pub(super) struct ChainState {
    pub(super) chain: KeyChain,
    pub(super) clock: ChainClock,
    pub(super) policy: Policy,
    pub(super) expiry_warning: Duration,
    /// `[mka]` for building participants (its `keys` are empty: see `chain`).
    pub(super) mka: Arc<MkaSettings>,
    pub(super) key_policy: KeyFilePolicy,
    /// The chain end the warnings were about, and how many were given.
    warned: Option<(ChainEnd, usize)>,
}

impl ChainState {
    /// Takes the chain out of `mka`.
    pub(super) fn new(
        mut mka: MkaSettings,
        clock: ChainClock,
        key_policy: KeyFilePolicy,
    ) -> ChainState {
        let chain = std::mem::take(&mut mka.keys);
        ChainState {
            chain,
            clock,
            policy: mka.policy,
            expiry_warning: mka.expiry_warning,
            mka: Arc::new(mka),
            key_policy,
            warned: None,
        }
    }

    /// The chain's time now.
    pub(super) fn now(&self) -> SystemTime {
        self.clock.now()
    }

    /// The warning thresholds, longest first.
    fn thresholds(&self) -> Vec<Duration> {
        let mut v = vec![self.expiry_warning];
        v.extend(LATER_WARNINGS.iter().filter(|d| **d < self.expiry_warning));
        v
    }

    /// When the chain must be looked at again: the next key start or end, or the next
    /// expiry warning (real time).
    pub(super) fn deadline(&self, now: Instant) -> Option<Instant> {
        let t = self.now();
        let mut next = self.chain.next_change(t);
        if let ChainEnd::At(e) = self.chain.end(t) {
            let given = match self.warned {
                Some((ChainEnd::At(w), n)) if w == e => n,
                _ => 0,
            };
            if let Some(th) = self.thresholds().get(given) {
                let at = e.checked_sub(*th).unwrap_or(t).max(t);
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        // A little past the moment, so that the chain's clock reads it as reached.
        next.map(|x| now + self.clock.until(x) + Duration::from_millis(1))
    }

    /// Logs the warnings due before the last primary key ends, once each, and an error
    /// once none is left.
    pub(super) fn check_expiry(&mut self) {
        let t = self.now();
        let end = self.chain.end(t);
        let given = match self.warned {
            Some((e, n)) if e == end => n,
            _ => 0,
        };
        let what = match self.policy {
            Policy::MustSecure => "frames are dropped (policy must-secure)",
            Policy::ShouldSecure => "frames pass unprotected (policy should-secure)",
        };
        match end {
            ChainEnd::Never => self.warned = None,
            ChainEnd::Over => {
                if given == 0 {
                    tracing::error!(
                        "key chain: no primary key is valid or pending (every one has ended); links cannot be secured and {what}: add a key to [[mka.keys]] and send SIGHUP"
                    );
                }
                self.warned = Some((end, 1));
            }
            ChainEnd::At(e) => {
                let left = e.duration_since(t).unwrap_or_default();
                let th = self.thresholds();
                let mut n = given;
                while n < th.len() && left <= th[n] {
                    n += 1;
                }
                if n > given {
                    tracing::warn!(
                        "key chain: the last valid key ends at {} (in {}); after that links cannot be secured and {what}: add the next key to [[mka.keys]] and send SIGHUP",
                        rfc3339(e),
                        human(left)
                    );
                }
                self.warned = Some((end, n));
            }
        }
    }

    /// Re-reads the key chain, the policy and `expiry_warning` from the configuration
    /// file (everything else in it needs a restart). Returns a summary.
    pub(super) fn reload(&mut self, path: &Path) -> Result<String, String> {
        let mut cfg = Config::load(path, self.key_policy).map_err(|e| e.to_string())?;
        let Some(mut mka) = cfg.mka.take() else {
            return Err(format!(
                "{}: no [mka] section now; the key source changes only with a restart",
                path.display()
            ));
        };
        let new = std::mem::take(&mut mka.keys);
        let added = new
            .keys()
            .iter()
            .filter(|k| !self.chain.keys().iter().any(|o| o.same_ca(k)))
            .count();
        let removed = self
            .chain
            .keys()
            .iter()
            .filter(|o| !new.keys().iter().any(|k| k.same_ca(o)))
            .count();
        let n = new.keys().len();
        self.chain = new;
        if mka.policy != self.policy {
            tracing::info!(
                "policy changes from {} to {}",
                self.policy.as_str(),
                mka.policy.as_str()
            );
        }
        self.policy = mka.policy;
        self.expiry_warning = mka.expiry_warning;
        self.warned = None;
        self.check_expiry();
        Ok(format!(
            "key chain re-read from {}: {n} key(s), {added} new, {removed} removed",
            path.display()
        ))
    }
}

/// `d` for a log line: `23 h 59 min`, `4 min 10 s`, `12 s`.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 86_400 {
        format!("{} d {} h", s / 86_400, s % 86_400 / 3600)
    } else if s >= 3600 {
        format!("{} h {} min", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{} min {} s", s / 60, s % 60)
    } else {
        format!("{s} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keychain::ChainKey;
    use macsec::crypto::SecretKey;
    use macsec::mka::Ckn;
    use std::time::UNIX_EPOCH;

    fn state(keys: Vec<ChainKey>, origin: SystemTime, warn: u64) -> ChainState {
        let text = "[secy]\n[mka]\nckn = \"0011\"\ncak = \"000102030405060708090a0b0c0d0e0f\"\n";
        let cfg = Config::parse(
            text,
            "t.toml",
            Path::new("."),
            KeyFilePolicy::AllowUnsafePermissions,
        )
        .unwrap();
        let mut mka = cfg.mka.unwrap();
        mka.keys = KeyChain::new(keys);
        mka.expiry_warning = Duration::from_secs(warn);
        ChainState::new(mka, ChainClock::scaled(origin, 20.0), KeyFilePolicy::Strict)
    }

    fn key(n: u8, start: Option<SystemTime>, end: Option<SystemTime>) -> ChainKey {
        ChainKey {
            ckn: Ckn::new(&[n; 16]).unwrap(),
            cak: SecretKey::from_slice(&[n; 16]).unwrap(),
            start,
            end,
            fallback: false,
            origin: format!("mka.keys[{n}]"),
        }
    }

    #[test]
    fn the_deadline_is_the_next_key_start_or_warning_in_real_time() {
        let o = UNIX_EPOCH + Duration::from_secs(1_765_000_000);
        let s = |x: u64| o + Duration::from_secs(x);
        let mut st = state(
            vec![
                key(1, None, Some(o - Duration::from_secs(3600))),
                key(2, Some(s(200)), Some(s(600))),
            ],
            o,
            250,
        );
        st.check_expiry();
        let now = Instant::now();
        let d = st.deadline(now).unwrap() - now;
        // +200 s of chain time at 20x: 10 s.
        assert!(
            d > Duration::from_millis(9_900) && d <= Duration::from_millis(10_002),
            "{d:?}"
        );
    }

    #[test]
    fn durations_for_logs() {
        assert_eq!(human(Duration::from_secs(86_399)), "23 h 59 min");
        assert_eq!(human(Duration::from_secs(2 * 86_400 + 7200)), "2 d 2 h");
        assert_eq!(human(Duration::from_secs(250)), "4 min 10 s");
        assert_eq!(human(Duration::from_secs(12)), "12 s");
    }
}
