use super::*;

fn slot(last_poll: u64, idle: bool, delivered: u64) -> Slot {
    Slot {
        last_poll: AtomicU64::new(last_poll),
        idle: AtomicBool::new(idle),
        busy: AtomicBool::new(false),
        delivered: AtomicU64::new(delivered),
        owing_since: AtomicU64::new(0),
        pin: Mutex::new(None),
        reaped: AtomicBool::new(false),
        open: AtomicBool::new(true),
    }
}

#[test]
fn a_stream_that_owes_nothing_is_never_stalled() {
    let caught_up = slot(0, true, 7);
    assert!(!caught_up.stalled(10_000, 300, 7));
    let waiting = slot(0, false, 7);
    assert!(!waiting.stalled(10_000, 300, 7));
}

#[test]
fn a_stream_unpolled_while_it_has_something_to_send_is_stalled_after_the_timeout() {
    let busy = slot(1_000, false, 3);
    assert!(!busy.stalled(1_200, 300, 7));
    assert!(busy.stalled(1_400, 300, 7));
}

#[test]
fn an_idle_stream_woken_by_new_events_but_never_polled_again_is_stalled_too() {
    // Its last poll found nothing; events came after it. The idle poll may
    // be long ago (a quiet watcher), so the clock starts when a sweep first
    // sees it owing, not at the poll.
    let quiet = slot(1_000, true, 3);
    assert!(!quiet.stalled(60_000, 300, 7), "first sight starts the clock");
    assert!(!quiet.stalled(60_200, 300, 7));
    assert!(quiet.stalled(60_400, 300, 7));
}

#[test]
fn a_poll_after_the_sweep_saw_it_owing_restarts_the_clock() {
    let quiet = slot(1_000, true, 3);
    assert!(!quiet.stalled(60_000, 300, 7));
    quiet.last_poll.store(60_100, Ordering::Relaxed); // polled, found nothing new yet
    assert!(!quiet.stalled(60_400, 300, 8), "seen owing again: a fresh start");
    assert!(!quiet.stalled(60_600, 300, 8));
    assert!(quiet.stalled(60_800, 300, 8));
}
