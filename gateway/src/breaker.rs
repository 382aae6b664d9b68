//! A per-endpoint circuit breaker, lock-free.
//!
//! Closed: calls flow; `threshold` consecutive transport failures open it.
//! Open: calls are refused until `cooldown` has passed. Half-open: exactly
//! one probe call is let through; its success closes the breaker, its
//! failure opens it again for another cooldown. An answer from the agent —
//! even an MCP error — counts as success: the endpoint is alive.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Breaker settings.
///
/// ```
/// use std::time::Duration;
/// use switchboard_gateway::{BreakerConfig, GatewayConfig};
///
/// // Open after 5 failures in a row, probe again after 10 s.
/// let breaker = BreakerConfig { threshold: 5, cooldown: Duration::from_secs(10) };
/// let config = GatewayConfig { breaker, ..GatewayConfig::default() };
/// assert_eq!(config.validate(), Ok(()));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker.
    pub threshold: u32,
    /// How long it stays open before a probe.
    pub cooldown: Duration,
}

// === impl BreakerConfig ===

impl Default for BreakerConfig {
    fn default() -> Self {
        Self { threshold: 3, cooldown: Duration::from_secs(2) }
    }
}

/// What the breaker lets through now (exported as
/// `switchboard_gateway_breaker_state`: 0 closed, 1 open, 2 half-open).
///
/// ```
/// use switchboard_gateway::{Breaker, BreakerConfig, BreakerState};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let breaker = Breaker::new(BreakerConfig::default());
/// assert_eq!(breaker.state(), BreakerState::Closed);
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Everything.
    Closed,
    /// Nothing.
    Open,
    /// One probe.
    HalfOpen,
}

/// The breaker of one endpoint.
///
/// ```
/// use std::time::Duration;
/// use switchboard_gateway::{Breaker, BreakerConfig, BreakerState};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let breaker = Breaker::new(BreakerConfig { threshold: 2, cooldown: Duration::from_secs(2) });
/// for _ in 0..2 {
///     assert!(breaker.try_acquire());
///     breaker.record_failure(); // connection refused, say
/// }
/// assert_eq!(breaker.state(), BreakerState::Open);
/// assert!(!breaker.try_acquire(), "no call reaches the endpoint until the cooldown ends");
/// # }
/// ```
#[derive(Debug)]
pub struct Breaker {
    config: BreakerConfig,
    epoch: Instant,
    failures: AtomicU32,
    /// Milliseconds since `epoch` until which the breaker is open; 0 = closed.
    open_until: AtomicU64,
    probing: AtomicBool,
}

// === impl Breaker ===

impl Breaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            epoch: Instant::now(),
            failures: AtomicU32::new(0),
            open_until: AtomicU64::new(0),
            probing: AtomicBool::new(false),
        }
    }

    /// The state now.
    pub fn state(&self) -> BreakerState {
        match self.open_until.load(Ordering::Acquire) {
            0 => BreakerState::Closed,
            until if self.now_ms() < until => BreakerState::Open,
            _ => BreakerState::HalfOpen,
        }
    }

    /// True when a call may go through now; in half-open state only the first
    /// caller gets `true` (the probe).
    pub fn try_acquire(&self) -> bool {
        match self.state() {
            BreakerState::Closed => true,
            BreakerState::Open => false,
            BreakerState::HalfOpen => self
                .probing
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_ok(),
        }
    }

    /// True when a call could go through (without taking the probe).
    pub fn is_available(&self) -> bool {
        match self.state() {
            BreakerState::Closed => true,
            BreakerState::Open => false,
            BreakerState::HalfOpen => !self.probing.load(Ordering::Acquire),
        }
    }

    /// The endpoint answered.
    pub fn record_success(&self) {
        self.failures.store(0, Ordering::Release);
        self.open_until.store(0, Ordering::Release);
        self.probing.store(false, Ordering::Release);
    }

    /// The endpoint failed at the transport level.
    pub fn record_failure(&self) {
        let was_probe = self.probing.swap(false, Ordering::AcqRel);
        let failures = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
        if was_probe || failures >= self.config.threshold {
            let cooldown = u64::try_from(self.config.cooldown.as_millis()).unwrap_or(u64::MAX);
            self.open_until.store(self.now_ms().saturating_add(cooldown).max(1), Ordering::Release);
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(BreakerConfig { threshold: 3, cooldown: Duration::from_secs(2) })
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_consecutive_failures_and_probes_once_after_the_cooldown() {
        let breaker = breaker();
        breaker.record_failure();
        breaker.record_failure();
        assert_eq!(breaker.state(), BreakerState::Closed);
        breaker.record_failure();
        assert_eq!(breaker.state(), BreakerState::Open);
        assert!(!breaker.try_acquire());

        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        assert!(breaker.try_acquire(), "the probe goes through");
        assert!(!breaker.try_acquire(), "only one probe at a time");
        breaker.record_success();
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert!(breaker.try_acquire());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_reopens_for_a_full_cooldown() {
        let breaker = breaker();
        for _ in 0..3 {
            breaker.record_failure();
        }
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(breaker.try_acquire());
        breaker.record_failure();
        assert_eq!(breaker.state(), BreakerState::Open);
        tokio::time::advance(Duration::from_millis(1999)).await;
        assert_eq!(breaker.state(), BreakerState::Open);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_resets_the_failure_count() {
        let breaker = breaker();
        breaker.record_failure();
        breaker.record_failure();
        breaker.record_success();
        breaker.record_failure();
        breaker.record_failure();
        assert_eq!(breaker.state(), BreakerState::Closed);
    }
}
