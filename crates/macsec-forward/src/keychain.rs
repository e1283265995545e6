//! The `[mka]` key chain: several CAKs with lifetimes, a fallback key, and which one
//! carries traffic when. Pure: the time is passed in. The KaY
//! (`forward::runtime::kay`) runs one MKA participant per key that may be used now and
//! asks [`choose_principal`] which of them drives the SecY (802.1X-2010 12.2: one
//! principal actor per port; the others take part in their CAs but install nothing).
//!
//! Rules, as the routers that offer key chains apply them (notes in
//! `docs/design-notes.md`):
//! - a key is *valid* from its `start` (inclusive; none: always) to its `end`
//!   (exclusive; none: never); an expired key is never used;
//! - among primary keys with a live peer the newest (latest `start`, then the later in
//!   the configuration) carries traffic; a newer key that becomes live takes over from
//!   an older one (hitless rollover), after which the older one is *retired*: it is
//!   not used again even if still valid;
//! - a fallback key carries traffic only while no valid primary key has a live peer,
//!   and hands back as soon as one has.

use macsec::crypto::SecretKey;
use macsec::mka::Ckn;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One key of the chain. Its CAK is never printed.
pub struct ChainKey {
    /// CA key name.
    pub ckn: Ckn,
    /// The pre-shared CAK.
    pub cak: SecretKey,
    /// Valid from (inclusive); `None`: always was.
    pub start: Option<SystemTime>,
    /// Valid until (exclusive); `None`: never ends.
    pub end: Option<SystemTime>,
    /// A fallback key (used only while no primary key has a live peer).
    pub fallback: bool,
    /// Where it was configured: `mka` (the single-key form) or `mka.keys[i]`.
    pub origin: String,
}

impl std::fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainKey")
            .field("ckn", &self.ckn_hex())
            .field("start", &self.start.map(rfc3339))
            .field("end", &self.end.map(rfc3339))
            .field("fallback", &self.fallback)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl ChainKey {
    /// Whether it may be used at `t`.
    pub fn valid_at(&self, t: SystemTime) -> bool {
        self.start.is_none_or(|s| s <= t) && self.end.is_none_or(|e| t < e)
    }

    /// The CKN in hex (not secret: every MKPDU carries it).
    pub fn ckn_hex(&self) -> String {
        hex::encode(self.ckn.as_bytes())
    }

    /// Same CKN and same CAK: the same CA.
    pub fn same_ca(&self, other: &ChainKey) -> bool {
        let (a, b) = (self.cak.expose_secret(), other.cak.expose_secret());
        // Compared without an early exit, as key material should be.
        self.ckn == other.ckn
            && a.len() == b.len()
            && a.iter().zip(b).fold(0u8, |x, (p, q)| x | (p ^ q)) == 0
    }

    /// Preference: primary over fallback, then the later start (none is earliest), then
    /// the later in the configuration.
    fn rank(&self, index: usize) -> (bool, Option<SystemTime>, usize) {
        (!self.fallback, self.start, index)
    }

    /// A copy, with the CAK duplicated (for a participant's configuration).
    pub fn duplicate(&self) -> ChainKey {
        ChainKey {
            ckn: self.ckn,
            cak: self.cak.duplicate(),
            start: self.start,
            end: self.end,
            fallback: self.fallback,
            origin: self.origin.clone(),
        }
    }
}

/// Where a key stands, as `macsec status` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyState {
    /// Its start is still to come.
    Pending,
    /// Valid, and its participant runs (it carries traffic, or may).
    Active,
    /// Valid, but a newer key took over: not used again.
    Retired,
    /// Past its end: never used.
    Expired,
}

impl KeyState {
    /// The name in the status JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Pending => "pending",
            KeyState::Active => "active",
            KeyState::Retired => "retired",
            KeyState::Expired => "expired",
        }
    }
}

/// When the chain stops having a usable primary key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainEnd {
    /// Some primary key never ends.
    Never,
    /// The last valid or pending primary key ends then.
    At(SystemTime),
    /// No primary key is valid or pending.
    Over,
}

/// The configured keys, in configuration order. CKNs differ.
#[derive(Debug, Default)]
pub struct KeyChain {
    keys: Vec<ChainKey>,
}

impl KeyChain {
    /// A chain of `keys` (the configuration checked that their CKNs differ).
    pub fn new(keys: Vec<ChainKey>) -> KeyChain {
        KeyChain { keys }
    }

    /// The keys, in configuration order.
    pub fn keys(&self) -> &[ChainKey] {
        &self.keys
    }

    /// The key with this CKN.
    pub fn find(&self, ckn: &Ckn) -> Option<(usize, &ChainKey)> {
        self.keys.iter().enumerate().find(|(_, k)| k.ckn == *ckn)
    }

    /// Its state at `t`; `retired`: a newer key took over from it.
    pub fn state(&self, i: usize, t: SystemTime, retired: bool) -> KeyState {
        let k = &self.keys[i];
        if k.end.is_some_and(|e| t >= e) {
            KeyState::Expired
        } else if k.start.is_some_and(|s| t < s) {
            KeyState::Pending
        } else if retired {
            KeyState::Retired
        } else {
            KeyState::Active
        }
    }

    /// Whether key `a` is preferred over key `b`.
    pub fn prefers(&self, a: usize, b: usize) -> bool {
        self.keys[a].rank(a) > self.keys[b].rank(b)
    }

    /// The next start or end strictly after `t`.
    pub fn next_change(&self, t: SystemTime) -> Option<SystemTime> {
        self.keys
            .iter()
            .flat_map(|k| [k.start, k.end])
            .flatten()
            .filter(|x| *x > t)
            .min()
    }

    /// When the last usable primary key ends, seen at `t`.
    pub fn end(&self, t: SystemTime) -> ChainEnd {
        let mut last: Option<SystemTime> = None;
        for k in self.keys.iter().filter(|k| !k.fallback) {
            match k.end {
                None => return ChainEnd::Never,
                Some(e) if e > t => last = Some(last.map_or(e, |l| l.max(e))),
                Some(_) => {}
            }
        }
        last.map_or(ChainEnd::Over, ChainEnd::At)
    }
}

/// A participant the KaY runs: its key (index in the chain) and whether it has a live
/// peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Index of its key in the chain.
    pub key: usize,
    /// It has at least one live peer.
    pub live: bool,
}

/// Which candidate's key drives the SecY at `t`, given the current one (key index).
/// See the module documentation for the rules. `None` only when no candidate's key is
/// valid.
pub fn choose_principal(
    chain: &KeyChain,
    t: SystemTime,
    candidates: &[Candidate],
    current: Option<usize>,
) -> Option<usize> {
    let valid: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| chain.keys.get(c.key).is_some_and(|k| k.valid_at(t)))
        .collect();
    let best = |it: &mut dyn Iterator<Item = &&Candidate>| -> Option<usize> {
        it.map(|c| c.key)
            .reduce(|a, b| if chain.prefers(b, a) { b } else { a })
    };
    let best_live = best(&mut valid.iter().filter(|c| c.live));
    let cur = current.and_then(|k| valid.iter().find(|c| c.key == k));
    match (cur, best_live) {
        // The current one stays unless a preferred one is live.
        (Some(c), Some(b)) if c.live => Some(if chain.prefers(b, c.key) { b } else { c.key }),
        (_, Some(b)) => Some(b),
        // Nobody is live: the current one waits, or else the best valid key.
        (Some(c), None) if chain.keys[c.key].fallback => best(&mut valid.iter()).or(Some(c.key)),
        (Some(c), None) => Some(c.key),
        (None, None) => best(&mut valid.iter()),
    }
}

/// Why the principal carries traffic, for the status.
pub fn reason(
    chain: &KeyChain,
    t: SystemTime,
    candidates: &[Candidate],
    principal: usize,
) -> String {
    let live = candidates.iter().any(|c| c.key == principal && c.live);
    let k = &chain.keys[principal];
    if !live {
        return "no key has a live peer yet".into();
    }
    if k.fallback {
        return "fallback: no primary key has a live peer".into();
    }
    let newer = candidates.iter().find(|c| {
        chain.keys[c.key].valid_at(t)
            && !chain.keys[c.key].fallback
            && chain.prefers(c.key, principal)
    });
    match newer {
        Some(c) => format!(
            "newer key {} has no live peer yet",
            chain.keys[c.key].ckn_hex()
        ),
        None => "primary: the newest valid key with a live peer".into(),
    }
}

/// `t` as RFC 3339 UTC with seconds (`2026-12-07T23:55:00Z`).
pub fn rfc3339(t: SystemTime) -> String {
    let s = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs_f64().ceil() as i64),
    };
    let days = s.div_euclid(86_400);
    let rem = s.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date (year, month, day) `z` days after 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// A TOML datetime (or an RFC 3339 text) as a point in time. It must have a date, a
/// time and a UTC offset (`Z` or `+01:00`): a local time would change meaning with the
/// machine's time zone.
pub fn from_toml_datetime(dt: &toml::value::Datetime) -> Result<SystemTime, String> {
    use toml::value::Offset;
    let (Some(date), Some(time)) = (dt.date, dt.time) else {
        return Err(format!(
            "{dt} is not a full date and time; write it as 2026-12-07T23:55:00Z"
        ));
    };
    let offset_min = match dt.offset {
        Some(Offset::Z) => 0i64,
        Some(Offset::Custom { minutes }) => i64::from(minutes),
        None => {
            return Err(format!(
                "{dt} has no UTC offset; add Z for UTC (2026-12-07T23:55:00Z) or an offset (+01:00)"
            ))
        }
    };
    if !(1..=12).contains(&date.month) || date.day == 0 || date.day > 31 {
        return Err(format!("{dt} is not a valid date"));
    }
    let days = days_from_civil(
        i64::from(date.year),
        u32::from(date.month),
        u32::from(date.day),
    );
    let secs = days * 86_400
        + i64::from(time.hour) * 3600
        + i64::from(time.minute) * 60
        + i64::from(time.second)
        - offset_min * 60;
    let nanos = time.nanosecond;
    if secs < 0 {
        return Err(format!("{dt} is before 1970"));
    }
    Ok(UNIX_EPOCH + Duration::new(secs as u64, nanos))
}

/// Parses an RFC 3339 text as [`from_toml_datetime`] does.
pub fn parse_time(text: &str) -> Result<SystemTime, String> {
    let dt: toml::value::Datetime = text.trim().parse().map_err(|_| {
        format!("{text:?} is not an RFC 3339 time; write it as 2026-12-07T23:55:00Z")
    })?;
    from_toml_datetime(&dt)
}

/// The key chain's clock: the system clock, or for tests a compressed one
/// (`MACSEC_TEST_KEYCHAIN_CLOCK="<origin unix seconds>:<scale>"`: origin + time since
/// start × scale). Only key lifetimes read it; MKA timers run in real time.
#[derive(Debug, Clone, Copy)]
pub struct ChainClock {
    test: Option<(SystemTime, std::time::Instant, f64)>,
}

/// The environment variable of [`ChainClock::from_env`].
pub const TEST_CLOCK_ENV: &str = "MACSEC_TEST_KEYCHAIN_CLOCK";

impl ChainClock {
    /// The system clock.
    pub fn system() -> ChainClock {
        ChainClock { test: None }
    }

    /// The system clock, or the test clock if [`TEST_CLOCK_ENV`] is set. Errors name
    /// the variable.
    pub fn from_env() -> Result<ChainClock, String> {
        let Some(v) = std::env::var_os(TEST_CLOCK_ENV) else {
            return Ok(ChainClock::system());
        };
        let v = v.to_string_lossy().into_owned();
        let bad = || {
            format!("{TEST_CLOCK_ENV}={v:?}: expected <origin unix seconds>:<scale>, e.g. 1765000000:10")
        };
        let (o, s) = v.split_once(':').ok_or_else(bad)?;
        let o: f64 = o.trim().parse().map_err(|_| bad())?;
        let s: f64 = s.trim().parse().map_err(|_| bad())?;
        if !(o >= 0.0 && o.is_finite() && s > 0.0 && s.is_finite()) {
            return Err(bad());
        }
        Ok(ChainClock {
            test: Some((
                UNIX_EPOCH + Duration::from_secs_f64(o),
                std::time::Instant::now(),
                s,
            )),
        })
    }

    /// A test clock reading `origin` now and running `scale` times faster than real time.
    pub fn scaled(origin: SystemTime, scale: f64) -> ChainClock {
        ChainClock {
            test: Some((origin, std::time::Instant::now(), scale)),
        }
    }

    /// Whether this is the test clock.
    pub fn is_test(&self) -> bool {
        self.test.is_some()
    }

    /// The chain's time now.
    pub fn now(&self) -> SystemTime {
        match self.test {
            None => SystemTime::now(),
            Some((origin, since, scale)) => {
                origin + Duration::from_secs_f64(since.elapsed().as_secs_f64() * scale)
            }
        }
    }

    /// How long, in real time, until the chain's clock reads `t` (zero if past).
    pub fn until(&self, t: SystemTime) -> Duration {
        let d = t.duration_since(self.now()).unwrap_or_default();
        match self.test {
            None => d,
            Some((_, _, scale)) => Duration::from_secs_f64(d.as_secs_f64() / scale),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_765_000_000 + s)
    }

    fn key(n: u8, start: Option<u64>, end: Option<u64>, fallback: bool) -> ChainKey {
        ChainKey {
            ckn: Ckn::new(&[n; 16]).unwrap(),
            cak: SecretKey::from_slice(&[n; 16]).unwrap(),
            start: start.map(at),
            end: end.map(at),
            fallback,
            origin: format!("mka.keys[{n}]"),
        }
    }

    fn c(key: usize, live: bool) -> Candidate {
        Candidate { key, live }
    }

    #[test]
    fn states_against_time() {
        let ch = KeyChain::new(vec![
            key(0, None, Some(100), false),
            key(1, Some(60), None, false),
        ]);
        assert_eq!(ch.state(0, at(0), false), KeyState::Active);
        assert_eq!(ch.state(0, at(99), true), KeyState::Retired);
        assert_eq!(
            ch.state(0, at(100), false),
            KeyState::Expired,
            "end is exclusive"
        );
        assert_eq!(ch.state(0, at(100), true), KeyState::Expired);
        assert_eq!(ch.state(1, at(59), false), KeyState::Pending);
        assert_eq!(
            ch.state(1, at(60), false),
            KeyState::Active,
            "start is inclusive"
        );
        assert!(!ch.keys()[0].valid_at(at(100)) && ch.keys()[0].valid_at(at(99)));
        assert_eq!(ch.next_change(at(0)), Some(at(60)));
        assert_eq!(ch.next_change(at(60)), Some(at(100)));
        assert_eq!(ch.next_change(at(100)), None);
        assert_eq!(ch.end(at(0)), ChainEnd::Never);
    }

    #[test]
    fn the_chain_end_is_the_last_primary_end() {
        let ch = KeyChain::new(vec![
            key(0, None, Some(100), false),
            key(1, Some(60), Some(200), false),
            key(2, None, None, true),
        ]);
        assert_eq!(
            ch.end(at(0)),
            ChainEnd::At(at(200)),
            "a fallback does not extend it"
        );
        assert_eq!(ch.end(at(150)), ChainEnd::At(at(200)));
        assert_eq!(ch.end(at(200)), ChainEnd::Over);
    }

    #[test]
    fn an_expired_or_pending_key_is_never_chosen() {
        let ch = KeyChain::new(vec![
            key(0, None, Some(100), false),
            key(1, Some(200), None, false),
        ]);
        let both_live = [c(0, true), c(1, true)];
        assert_eq!(choose_principal(&ch, at(50), &both_live, None), Some(0));
        assert_eq!(choose_principal(&ch, at(50), &both_live, Some(1)), Some(0));
        // Between the two: nothing valid.
        assert_eq!(choose_principal(&ch, at(150), &both_live, Some(0)), None);
        assert_eq!(choose_principal(&ch, at(200), &both_live, Some(0)), Some(1));
    }

    #[test]
    fn overlap_newest_live_key_takes_over_and_old_stays_until_then() {
        let ch = KeyChain::new(vec![
            key(0, None, Some(120), false),
            key(1, Some(60), None, false),
        ]);
        // Before the new key is live with the peer the old one keeps the traffic.
        let r = choose_principal(&ch, at(70), &[c(0, true), c(1, false)], Some(0));
        assert_eq!(r, Some(0));
        assert_eq!(
            reason(&ch, at(70), &[c(0, true), c(1, false)], 0),
            format!("newer key {} has no live peer yet", ch.keys()[1].ckn_hex())
        );
        // Live: it takes over.
        assert_eq!(
            choose_principal(&ch, at(70), &[c(0, true), c(1, true)], Some(0)),
            Some(1)
        );
        assert_eq!(
            reason(&ch, at(70), &[c(0, true), c(1, true)], 1),
            "primary: the newest valid key with a live peer"
        );
        // The old key's peer going away changes nothing.
        assert_eq!(
            choose_principal(&ch, at(80), &[c(0, false), c(1, true)], Some(1)),
            Some(1)
        );
        // A peer that only has the old key: the old one is used while it is valid.
        assert_eq!(
            choose_principal(&ch, at(80), &[c(0, true), c(1, false)], Some(1)),
            Some(0)
        );
        // At start-up nobody is live: the newest valid key waits for its peer.
        assert_eq!(
            choose_principal(&ch, at(80), &[c(0, false), c(1, false)], None),
            Some(1)
        );
        // A current key that is not live waits too, unless another is live.
        assert_eq!(
            choose_principal(&ch, at(80), &[c(0, false), c(1, false)], Some(0)),
            Some(0)
        );
        // Equal starts: the later in the configuration.
        let ch = KeyChain::new(vec![
            key(0, Some(10), None, false),
            key(1, Some(10), None, false),
        ]);
        assert_eq!(
            choose_principal(&ch, at(80), &[c(0, true), c(1, true)], None),
            Some(1)
        );
    }

    #[test]
    fn fallback_only_while_no_primary_is_live() {
        let ch = KeyChain::new(vec![key(0, None, None, false), key(1, None, None, true)]);
        // The primary is not live (a CAK mismatch), the fallback is: fallback.
        assert_eq!(
            choose_principal(&ch, at(0), &[c(0, false), c(1, true)], Some(0)),
            Some(1)
        );
        assert_eq!(
            reason(&ch, at(0), &[c(0, false), c(1, true)], 1),
            "fallback: no primary key has a live peer"
        );
        // It stays while the primary is not live.
        assert_eq!(
            choose_principal(&ch, at(0), &[c(0, false), c(1, true)], Some(1)),
            Some(1)
        );
        // The primary is live again: back to it at once.
        assert_eq!(
            choose_principal(&ch, at(0), &[c(0, true), c(1, true)], Some(1)),
            Some(0)
        );
        // Nobody live: the primary waits (not the fallback).
        assert_eq!(
            choose_principal(&ch, at(0), &[c(0, false), c(1, false)], Some(1)),
            Some(0)
        );
        assert_eq!(
            choose_principal(&ch, at(0), &[c(0, false), c(1, false)], None),
            Some(0)
        );
        assert_eq!(
            reason(&ch, at(0), &[c(0, false), c(1, false)], 0),
            "no key has a live peer yet"
        );
        // An expired fallback is not used either.
        let ch = KeyChain::new(vec![key(0, None, None, false), key(1, None, Some(5), true)]);
        assert_eq!(
            choose_principal(&ch, at(10), &[c(0, false), c(1, true)], Some(1)),
            Some(0)
        );
    }

    #[test]
    fn times_parse_from_toml_and_text_and_print_back() {
        let t = parse_time("2026-12-07T23:55:00Z").unwrap();
        assert_eq!(rfc3339(t), "2026-12-07T23:55:00Z");
        assert_eq!(
            t.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            1_796_687_700,
            "date -d 2026-12-07T23:55:00Z +%s"
        );
        assert_eq!(parse_time("2026-12-08T00:55:00+01:00").unwrap(), t);
        assert_eq!(parse_time("2026-12-07 23:55:00Z").unwrap(), t);
        let frac = parse_time("2026-12-07T23:55:00.5Z").unwrap();
        assert_eq!(frac.duration_since(t).unwrap(), Duration::from_millis(500));
        assert_eq!(
            rfc3339(parse_time("2024-02-29T00:00:00Z").unwrap()),
            "2024-02-29T00:00:00Z"
        );
        assert_eq!(
            rfc3339(parse_time("2000-03-01T12:34:56Z").unwrap()),
            "2000-03-01T12:34:56Z"
        );
        for bad in [
            "2026-12-07T23:55:00",
            "2026-12-07",
            "23:55:00",
            "tomorrow",
            "2026-13-01T00:00:00Z",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
        assert!(parse_time("2026-12-07T23:55:00")
            .unwrap_err()
            .contains("no UTC offset"));
        let doc: toml::Table = "t = 2026-12-07T23:55:00Z".parse().unwrap();
        let dt = doc["t"].as_datetime().unwrap();
        assert_eq!(from_toml_datetime(dt).unwrap(), t);
    }

    #[test]
    fn the_test_clock_runs_scaled_from_its_origin() {
        let c = ChainClock {
            test: Some((
                at(0),
                std::time::Instant::now() - Duration::from_secs(3),
                10.0,
            )),
        };
        let now = c.now().duration_since(at(0)).unwrap().as_secs_f64();
        assert!((30.0..31.0).contains(&now), "{now}");
        let wait = c.until(at(60)).as_secs_f64();
        assert!((2.9..3.01).contains(&wait), "{wait}");
        assert_eq!(c.until(at(0)), Duration::ZERO);
        assert!(ChainClock::system().now() > at(0));
    }
}
