//! Rate limits: token buckets per principal, per tool and for the whole
//! gateway, each with its own rate and burst.
//!
//! A call takes one token from each bucket that applies, all or none: a
//! caller refused by its own bucket spends nothing from the tool's or the
//! global one, so one greedy principal never eats the others' share. The
//! buckets live in this process: limits are per gateway replica, never
//! shared between replicas. Keyed buckets are bounded: past
//! [`MAX_KEYS`] the ones that are full again (idle callers) are dropped.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// Most principals or tools with a bucket at once.
pub const MAX_KEYS: usize = 10_000;

/// A sustained rate and the burst above it.
///
/// ```
/// use switchboard_gateway::access::Rate;
///
/// let rate: Rate = "600/m:50".parse().unwrap();
/// assert_eq!((rate.per_second, rate.burst), (10.0, 50));
/// let plain: Rate = "5/s".parse().unwrap();
/// assert_eq!(plain.burst, 5, "the burst defaults to one second's worth (at least 1)");
/// assert!("5/week".parse::<Rate>().unwrap_err().contains("unit"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens added per second.
    pub per_second: f64,
    /// Bucket size: calls allowed at once after a quiet period.
    pub burst: u32,
}

impl FromStr for Rate {
    type Err = String;

    /// `N/s`, `N/m` or `N/h`, optionally `:BURST`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad =
            |why: &str| format!("rate {text:?}: {why} (use N/s, N/m or N/h, optionally :BURST)");
        let (rate, burst) = match text.split_once(':') {
            Some((rate, burst)) => (rate, Some(burst)),
            None => (text, None),
        };
        let (count, unit) = rate.trim().split_once('/').ok_or_else(|| bad("no unit"))?;
        let count: f64 = count.trim().parse().map_err(|_| bad("count is not a number"))?;
        let seconds = match unit.trim() {
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad("unknown unit")),
        };
        if !(count.is_finite() && count > 0.0) {
            return Err(bad("count must be greater than 0"));
        }
        let per_second = count / seconds;
        let burst = match burst {
            Some(burst) => burst.trim().parse().map_err(|_| bad("burst is not a whole number"))?,
            None => (per_second.ceil() as u32).max(1),
        };
        if burst == 0 {
            return Err(bad("burst must be at least 1"));
        }
        Ok(Self { per_second, burst })
    }
}

/// Which limits apply (none: no limit).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LimitsConfig {
    /// Per principal.
    pub per_principal: Option<Rate>,
    /// Per exposed tool (or resource, prompt), all callers together.
    pub per_tool: Option<Rate>,
    /// The whole gateway.
    pub global: Option<Rate>,
}

/// Which bucket refused a call, and when a token will be there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    /// `principal`, `tool` or `global`.
    pub scope: &'static str,
    /// How long until the call would pass.
    pub retry_after: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

#[derive(Debug, Default)]
struct Buckets {
    global: Option<Bucket>,
    principals: HashMap<String, Bucket>,
    tools: HashMap<String, Bucket>,
}

/// The rate limiter of one gateway.
#[derive(Debug)]
pub(crate) struct Limiter {
    config: LimitsConfig,
    buckets: Mutex<Buckets>,
}

// === impl Bucket ===

impl Bucket {
    fn full(rate: Rate, now: Instant) -> Self {
        Self { tokens: f64::from(rate.burst), last: now }
    }

    fn refill(&mut self, rate: Rate, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate.per_second).min(f64::from(rate.burst));
        self.last = now;
    }

    fn wait(&self, rate: Rate) -> Option<Duration> {
        (self.tokens < 1.0).then(|| Duration::from_secs_f64((1.0 - self.tokens) / rate.per_second))
    }
}

// === impl Limiter ===

impl Limiter {
    pub(crate) fn new(config: LimitsConfig) -> Self {
        Self { config, buckets: Mutex::new(Buckets::default()) }
    }

    pub(crate) fn is_off(&self) -> bool {
        self.config == LimitsConfig::default()
    }

    /// Takes a token for `principal` calling `tool` from every bucket, or
    /// none and says which bucket is empty.
    pub(crate) fn check(&self, principal: &str, tool: &str) -> Result<(), Limited> {
        if self.is_off() {
            return Ok(());
        }
        let now = Instant::now();
        let config = self.config;
        let mut buckets = self.buckets.lock();
        let buckets = &mut *buckets;
        let global = config.global.map(|rate| {
            let bucket = buckets.global.get_or_insert_with(|| Bucket::full(rate, now));
            bucket.refill(rate, now);
            (rate, bucket)
        });
        let principal = config.per_principal.and_then(|rate| {
            keyed(&mut buckets.principals, principal, rate, now).map(|b| (rate, b))
        });
        let tool = config
            .per_tool
            .and_then(|rate| keyed(&mut buckets.tools, tool, rate, now).map(|b| (rate, b)));
        let mut all = [("principal", principal), ("tool", tool), ("global", global)];
        for (scope, entry) in &all {
            if let Some((rate, bucket)) = entry
                && let Some(retry_after) = bucket.wait(*rate)
            {
                return Err(Limited { scope, retry_after });
            }
        }
        for (_, entry) in &mut all {
            if let Some((_, bucket)) = entry {
                bucket.tokens -= 1.0;
            }
        }
        Ok(())
    }
}

/// The bucket of `key`, refilled to `now`; makes room when the map is full.
fn keyed<'m>(
    map: &'m mut HashMap<String, Bucket>,
    key: &str,
    rate: Rate,
    now: Instant,
) -> Option<&'m mut Bucket> {
    if !map.contains_key(key) {
        if map.len() >= MAX_KEYS {
            map.retain(|_, bucket| {
                bucket.refill(rate, now);
                bucket.tokens < f64::from(rate.burst)
            });
            if map.len() >= MAX_KEYS {
                map.clear();
            }
        }
        map.insert(key.to_owned(), Bucket::full(rate, now));
    }
    let bucket = map.get_mut(key)?;
    bucket.refill(rate, now);
    Some(bucket)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(per_second: f64, burst: u32) -> Option<Rate> {
        Some(Rate { per_second, burst })
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_is_cut_at_the_bucket_and_refills_at_the_rate() {
        let limiter =
            Limiter::new(LimitsConfig { per_principal: rate(1.0, 3), ..Default::default() });
        let passed = (0..10).filter(|_| limiter.check("alice", "t").is_ok()).count();
        assert_eq!(passed, 3);
        let refused = limiter.check("alice", "t").unwrap_err();
        assert_eq!(refused.scope, "principal");
        assert!(refused.retry_after <= Duration::from_secs(1));
        assert!(limiter.check("bob", "t").is_ok(), "other principals have their own bucket");
        tokio::time::advance(Duration::from_secs(2)).await;
        let passed = (0..10).filter(|_| limiter.check("alice", "t").is_ok()).count();
        assert_eq!(passed, 2, "two seconds at 1/s");
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_call_spends_nothing_elsewhere() {
        let limiter = Limiter::new(LimitsConfig {
            per_principal: rate(0.001, 1),
            global: rate(0.001, 3),
            ..Default::default()
        });
        assert!(limiter.check("greedy", "t").is_ok());
        for _ in 0..5 {
            assert_eq!(limiter.check("greedy", "t").unwrap_err().scope, "principal");
        }
        assert!(limiter.check("a", "t").is_ok());
        assert!(limiter.check("b", "t").is_ok());
        assert_eq!(limiter.check("c", "t").unwrap_err().scope, "global");
    }
}
