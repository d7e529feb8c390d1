//! How many requests one registry gets at once: an AIMD window, as TCP's congestion control
//! keeps one. It starts polite, grows while answers come back as fast as the fastest seen
//! (slow start doubles it each round trip, then it grows by one per round trip), halves at
//! once on 429 or 503, and shrinks at once in proportion when latency climbs past twice the
//! fastest round trip (not the latency of a place past the most ever in flight: its request
//! opened a connection). The `--registry-concurrency` value (or a host's `concurrency`) is
//! its ceiling, never a fixed width.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// Requests in flight to a host before anything is known of it.
pub const INITIAL: usize = 8;
/// Latency above this multiple of the fastest round trip counts as congestion.
const RISE: f64 = 2.0;
/// What a cut on latency keeps of the flight: what would bring latency back under the bound,
/// at least half and at most nine tenths. Rising latency says the registry queues, so it
/// already answers as fast as it can: halving the flight there cut the rate below what it
/// could take (issue 17: 2.4 s for 1,100 references in the network benchmark at a fixed 32
/// in flight, 1.9 s at 64). A refusal says no outright, and halves it.
const LATENCY_CUT_MOST: f64 = 0.5;
const LATENCY_CUT_LEAST: f64 = 0.9;
/// Latency under this is noise, never congestion (loopback answers in microseconds).
const FLOOR: Duration = Duration::from_millis(5);

/// One host's window.
pub struct Window {
    host: String,
    ceiling: usize,
    state: Mutex<State>,
    freed: Notify,
}

#[derive(Debug)]
struct State {
    limit: f64,
    in_flight: usize,
    /// Where slow start ends: the window after the last cut.
    threshold: f64,
    /// The fastest answer seen, and a smoothed latency.
    fastest: Option<Duration>,
    smoothed: Option<Duration>,
    last_cut: Option<Instant>,
    /// The most requests ever in flight at once: a place past it needs a connection that
    /// is not open yet (HTTP/1.1 has one request per connection).
    widest: usize,
    /// The window last reported with `-v`.
    reported: usize,
}

/// A place in the window; dropping it frees the place.
pub struct Permit<'a> {
    window: &'a Window,
    /// The place was past the most ever in flight, so its request likely opened a connection
    /// (a TCP, and maybe TLS, handshake: round trips that are not the registry's load).
    fresh: bool,
}

impl Permit<'_> {
    /// Feeds its request's answer back to the window. An answer on a fresh place says
    /// nothing about load by its latency (a handshake came first); a refusal still counts.
    pub fn observe(&self, signal: Signal) {
        if self.fresh && matches!(signal, Signal::Answered(_)) {
            return;
        }
        self.window.observe(signal);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut s = self.window.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        let room = s.in_flight < s.places();
        drop(s);
        // One freed place wakes one waiter (not all of them: with hundreds waiting, waking
        // every one on every answer cost more CPU than the requests did).
        if room {
            self.window.freed.notify_one();
        }
    }
}

/// What an answer says about the registry's load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Answered (any status but 429 or 503) in this time.
    Answered(Duration),
    /// 429 or 503: too much.
    Refused,
}

impl State {
    /// Places in the window: its limit, at least one.
    fn places(&self) -> usize {
        (self.limit as usize).max(1)
    }
}

impl Window {
    pub fn new(host: &str, ceiling: usize) -> Window {
        let ceiling = ceiling.max(1);
        let start = INITIAL.min(ceiling) as f64;
        Window {
            host: host.to_string(),
            ceiling,
            state: Mutex::new(State {
                limit: start,
                in_flight: 0,
                threshold: ceiling as f64,
                fastest: None,
                smoothed: None,
                last_cut: None,
                widest: 0,
                reported: start as usize,
            }),
            freed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The number of requests the window allows now.
    pub fn limit(&self) -> usize {
        self.lock().places()
    }

    /// Waits for a place in the window. Waiters are woken one per freed place, in the
    /// order they came; a waiter dropped after its wake-up passes it on (tokio's `Notify`).
    pub async fn acquire(&self) -> Permit<'_> {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            {
                let mut s = self.lock();
                if s.in_flight < s.places() {
                    s.in_flight += 1;
                    let fresh = s.in_flight > s.widest;
                    s.widest = s.widest.max(s.in_flight);
                    return Permit {
                        window: self,
                        fresh,
                    };
                }
            }
            freed.await;
        }
    }

    /// Feeds an answer back: grow while latency is flat, halve on a refusal, shrink on a rise.
    pub fn observe(&self, signal: Signal) {
        let mut s = self.lock();
        let before = s.limit;
        let places_before = s.places();
        // What a cut keeps of the flight, and why.
        let congested = match signal {
            Signal::Refused => Some((0.5, "refused".to_string())),
            Signal::Answered(latency) => {
                let fastest = s.fastest.map_or(latency, |f| f.min(latency));
                s.fastest = Some(fastest);
                let smoothed = s
                    .smoothed
                    .map_or(latency, |m| m.mul_f64(0.875) + latency.mul_f64(0.125));
                s.smoothed = Some(smoothed);
                let bound = fastest.mul_f64(RISE).max(FLOOR);
                (smoothed > bound).then(|| {
                    // Little's law: the flight that would answer within the bound at the
                    // rate the registry answers now.
                    let keep = (bound.as_secs_f64() / smoothed.as_secs_f64())
                        .clamp(LATENCY_CUT_MOST, LATENCY_CUT_LEAST);
                    let why = format!(
                        "latency {:.0} ms, over {:.0} ms",
                        smoothed.as_secs_f64() * 1e3,
                        bound.as_secs_f64() * 1e3
                    );
                    (keep, why)
                })
            }
        };
        match congested {
            Some((keep, why)) => {
                // One cut per round trip: the answers of one burst are one signal.
                let round_trip = s.smoothed.unwrap_or(FLOOR).max(FLOOR);
                if s.last_cut.is_some_and(|t| t.elapsed() < round_trip) {
                    return;
                }
                // A share of what was in flight when the registry said so (TCP's flight
                // size), so a window that overshot in slow start drops below the registry's
                // limit in one cut.
                let flight = (s.in_flight.max(1) as f64).min(s.limit);
                s.limit = (flight * keep).max(1.0);
                s.threshold = s.limit;
                s.last_cut = Some(Instant::now());
                // A cut measures afresh: latency after it is the new normal to beat.
                s.smoothed = s.fastest;
                log::debug!(
                    "{}: {} requests in flight at most ({why})",
                    self.host,
                    s.limit as usize
                );
                s.reported = s.limit as usize;
            }
            None => {
                let step = if s.limit < s.threshold {
                    1.0
                } else {
                    1.0 / s.limit
                };
                s.limit = (s.limit + step).min(self.ceiling as f64);
                let now = s.limit as usize;
                if now >= s.reported * 2 || (now == self.ceiling && s.reported < now) {
                    log::debug!(
                        "{}: {now} requests in flight at most ({})",
                        self.host,
                        if before < s.threshold {
                            "slow start"
                        } else {
                            "growing"
                        }
                    );
                    s.reported = now;
                }
            }
        }
        // A grown window wakes one waiter per new place; a cut one wakes nobody.
        let new_places = s.places().saturating_sub(places_before);
        drop(s);
        for _ in 0..new_places {
            self.freed.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RTT: Duration = Duration::from_millis(50);

    /// `n` answers in `latency` each.
    fn answers(w: &Window, n: usize, latency: Duration) {
        for _ in 0..n {
            w.observe(Signal::Answered(latency));
        }
    }

    /// `n` places, held until dropped.
    async fn hold(w: &Window, n: usize) -> Vec<Permit<'_>> {
        futures::future::join_all((0..n).map(|_| w.acquire())).await
    }

    #[test]
    fn slow_start_doubles_to_the_ceiling_while_latency_is_flat() {
        let w = Window::new("r", 128);
        assert_eq!(w.limit(), INITIAL);
        // One round trip: as many answers as the window holds.
        for _ in 0..4 {
            let n = w.limit();
            for _ in 0..n {
                w.observe(Signal::Answered(RTT));
            }
        }
        assert_eq!(w.limit(), 128, "8 → 16 → 32 → 64 → 128");
        answers(&w, 1000, RTT);
        assert_eq!(w.limit(), 128, "never past the ceiling");
    }

    #[tokio::test]
    async fn a_refusal_halves_what_was_in_flight_once_per_round_trip_then_grows_by_one() {
        let w = Window::new("r", 128);
        answers(&w, 200, RTT);
        let full = w.limit();
        // Half the window in flight when the registry says no: half of that, not of the window.
        let held = hold(&w, full / 2).await;
        w.observe(Signal::Refused);
        assert_eq!(w.limit(), full / 4, "half of the {} in flight", full / 2);
        drop(held);
        let held = hold(&w, w.limit()).await;
        let full = w.limit() * 2;
        w.observe(Signal::Refused);
        w.observe(Signal::Refused);
        assert_eq!(w.limit(), full / 2, "a burst of refusals is one signal");
        drop(held);
        // After the cut, a round trip of answers adds about one, not a doubling.
        let n = w.limit();
        answers(&w, 10 * n, RTT);
        assert!(
            (n + 8..=n + 10).contains(&w.limit()),
            "{} after {n}",
            w.limit()
        );
    }

    #[test]
    fn rising_latency_is_congestion() {
        let w = Window::new("r", 128);
        answers(&w, 40, RTT);
        let grown = w.limit();
        answers(&w, 40, RTT * 5);
        assert!(w.limit() <= grown / 2 + 1, "{} after {grown}", w.limit());
    }

    /// A window grown to `grown` places by answers in `RTT`, whose places all have open
    /// connections, then `grown` answers in `latency` on held places; the limit after.
    async fn cut_by(latency: Duration) -> (usize, usize) {
        let w = Window::new("r", 128);
        answers(&w, 40, RTT);
        let grown = w.limit();
        drop(hold(&w, grown).await);
        let held = hold(&w, grown).await;
        for p in &held {
            p.observe(Signal::Answered(latency));
        }
        (grown, w.limit())
    }

    #[tokio::test]
    async fn rising_latency_shrinks_the_flight_in_proportion_to_the_overshoot() {
        // issue 17: a registry that queues answers at its full rate; halving the flight on
        // the first rise cut the network benchmark's rate well below what it could take.
        // Latency that creeps past the bound (2 x RTT): the smoothed latency crosses it just
        // barely, and a tenth goes.
        let (grown, kept) = cut_by(RTT * 5 / 2).await;
        assert_eq!(kept, grown * 9 / 10, "{kept} of {grown}");
        // A jump to 20 x RTT: the first smoothed value, 7/8 RTT + 20/8 RTT, is 3.375 RTT
        // against a bound of 2: 2 / 3.375 of the flight stays.
        let (grown, kept) = cut_by(RTT * 20).await;
        assert_eq!(
            kept,
            (grown as f64 * 2.0 / 3.375) as usize,
            "{kept} of {grown}"
        );
        // Far past it: never less than half.
        let (grown, kept) = cut_by(RTT * 40).await;
        assert_eq!(kept, grown / 2, "{kept} of {grown}");
    }

    #[tokio::test]
    async fn a_place_past_the_most_ever_in_flight_is_not_judged_by_its_latency() {
        // issue 17: growing the window opens connections, and a handshake's round trips are
        // not congestion; a refusal on such a place still is.
        let w = Window::new("r", 128);
        answers(&w, 40, RTT);
        let grown = w.limit();
        let held = hold(&w, grown).await;
        assert!(held.iter().all(|p| p.fresh), "every place is new");
        for p in &held {
            p.observe(Signal::Answered(RTT * 5));
        }
        assert_eq!(
            w.limit(),
            grown,
            "slow first answers on new places cut nothing"
        );
        drop(held);
        // The same places again: their connections are open, so latency counts.
        let held = hold(&w, grown).await;
        assert!(held.iter().all(|p| !p.fresh));
        for p in &held {
            p.observe(Signal::Answered(RTT * 5));
        }
        assert!(w.limit() < grown, "{} after {grown}", w.limit());
        drop(held);
        let w = Window::new("r", 128);
        let p = w.acquire().await;
        assert!(p.fresh);
        p.observe(Signal::Refused);
        assert!(w.limit() < INITIAL, "a refusal counts on any place");
    }

    #[tokio::test]
    async fn the_window_bounds_what_is_in_flight() {
        let w = std::sync::Arc::new(Window::new("r", 2));
        let a = w.acquire().await;
        let _b = w.acquire().await;
        let waiting = {
            let w = w.clone();
            tokio::spawn(async move {
                let _c = w.acquire().await;
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "a third waits");
        drop(a);
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("a freed place lets it in")
            .unwrap();
    }
}
