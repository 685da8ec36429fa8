//! The self-check: comparing our figures with the exchange's, whatever the arrival order.
//!
//! Binance orders events of one type, but not events of different types (PROTOCOL §1.4): the
//! `ACCOUNT_UPDATE` that reports a position after a fill may arrive before the `ORDER_TRADE_UPDATE` of
//! that fill. An exchange row stamped `T` describes the state after every change up to `T`, so it can only
//! be judged once every change up to `T` is in. A [`Checked`] value therefore keeps:
//!
//! - the time of the latest change applied and the states reached at that time (several fills may share
//!   one `T`, and a row may describe any of them);
//! - a short history of earlier states, for a row that arrives after newer changes;
//! - rows still waiting for a verdict, each judged as soon as it is decidable: a matching state is reached,
//!   a change stamped later than the row arrives (so everything up to the row's time is in), or the caller
//!   settles up to a time.

use std::collections::VecDeque;

use acctmon_domain::Timestamp;

/// How many earlier states are kept for rows that arrive late.
const HISTORY: usize = 16;

/// How many states of the latest time slot are kept. The exchange sends a fill's rows next to the fill,
/// so a row describes one of the last few states reached; a burst of thousands of fills stamped with one
/// millisecond must not make every check and every persisted copy of the books grow with it. The state
/// the slot started from is kept too.
const TIES: usize = 256;

/// A value that can be compared with an exchange figure.
pub(crate) trait Figure: Clone + PartialEq {
    /// Whether `self` (ours) agrees with `exchange` within tolerance.
    fn agrees(&self, exchange: &Self) -> bool;
}

/// A verdict on one exchange row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Verdict<S> {
    /// Our state agrees with the row.
    Agrees {
        /// The row's exact figure.
        exchange: S,
        /// True when the row describes our current state, so its exact figure may be adopted; false when
        /// it describes an earlier state (a late row, or one of several fills at the same time).
        current: bool,
    },
    /// A real disagreement.
    Disagrees {
        /// Our state at the row's time.
        ours: S,
        /// The row.
        exchange: S,
        /// The row's time.
        time: Timestamp,
        /// True when newer changes were applied after the row's time (the state compared is historical).
        stale: bool,
    },
}

/// A figure tracked against the exchange's reports of it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Checked<S> {
    /// Changes at or before this time are already part of the figure (it was adopted from the exchange).
    baseline: Option<Timestamp>,
    /// Time of the latest change applied.
    last_change: Option<Timestamp>,
    /// States at `last_change`: the state before the first change at that time, then after each change
    /// (the latest [`TIES`] of them, a repeat of the previous state left out).
    ties: Vec<S>,
    /// Earlier `(time, state)` pairs, newest last: the state that held from `time` until the next change.
    history: VecDeque<(Timestamp, S)>,
    /// Rows waiting for a verdict, in arrival order.
    pending: Vec<(Timestamp, S)>,
    /// Time of the latest full statement of the figure (a REST snapshot): rows stamped before it
    /// describe a state the statement supersedes and are not judged.
    #[serde(default)]
    superseded: Option<Timestamp>,
}

impl<S: Figure> Default for Checked<S> {
    fn default() -> Self {
        Self {
            baseline: None,
            last_change: None,
            ties: Vec::new(),
            history: VecDeque::new(),
            pending: Vec::new(),
            superseded: None,
        }
    }
}

impl<S: Figure> Checked<S> {
    /// Whether a change stamped `time` is already part of an adopted baseline.
    pub(crate) fn covered_by_baseline(&self, time: Timestamp) -> bool {
        self.baseline.is_some_and(|b| time <= b)
    }

    /// Marks the figure as adopted from the exchange as of `time`.
    pub(crate) fn set_baseline(&mut self, time: Timestamp, state: S) {
        self.baseline = Some(self.baseline.map_or(time, |b| b.max(time)));
        self.superseded = Some(self.superseded.map_or(time, |s| s.max(time)));
        self.last_change = Some(self.last_change.map_or(time, |t| t.max(time)));
        self.ties.clear();
        self.ties.push(state);
        self.pending.clear();
    }

    /// A full statement of the figure as of `time` (a REST snapshot) is about to be observed: rows
    /// stamped before `time`, waiting or still to come, are superseded by it and never judged.
    /// (After a reconnect the stream may deliver rows that the snapshot already covers.)
    pub(crate) fn supersede(&mut self, time: Timestamp) {
        if self.superseded.is_some_and(|s| s >= time) {
            return;
        }
        self.superseded = Some(time);
        self.pending.retain(|(t, _)| *t >= time);
    }

    /// Rows still waiting.
    pub(crate) fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Call before applying a change stamped `time` to a figure whose current value is `current`.
    /// Rows older than the change become decidable and are judged against `current`.
    pub(crate) fn before_change(
        &mut self,
        time: Timestamp,
        current: &S,
        out: &mut Vec<Verdict<S>>,
    ) {
        if !self.pending.is_empty() {
            self.judge_pending(|t| t < time, current, out);
        }
        match self.last_change {
            Some(last) if last == time => {}
            Some(last) if last > time => {
                // A change older than the newest one (money movements of another type); it joins the
                // current time slot, which is the best we can say about it.
            }
            _ => {
                if let Some(last) = self.last_change {
                    for state in self.ties.drain(..) {
                        if self.history.len() == HISTORY {
                            self.history.pop_front();
                        }
                        self.history.push_back((last, state));
                    }
                }
                self.ties.clear();
                self.ties.push(current.clone());
                self.last_change = Some(time);
            }
        }
    }

    /// Call after applying the change; `current` is the new value. Rows that now agree are settled.
    pub(crate) fn after_change(&mut self, current: &S, out: &mut Vec<Verdict<S>>) {
        if self.ties.last() != Some(current) {
            if self.ties.len() > TIES {
                self.ties.remove(1);
            }
            self.ties.push(current.clone());
        }
        if self.pending.is_empty() {
            return;
        }
        let mut i = 0;
        while i < self.pending.len() {
            if current.agrees(&self.pending[i].1) {
                let (_, exchange) = self.pending.remove(i);
                out.push(Verdict::Agrees {
                    exchange,
                    current: true,
                });
            } else {
                i += 1;
            }
        }
    }

    /// An exchange row stamped `time` reports `exchange`; `current` is our value now.
    /// Returns a verdict now when the row is decidable, else keeps it pending.
    pub(crate) fn observe(
        &mut self,
        time: Timestamp,
        exchange: S,
        current: &S,
    ) -> Option<Verdict<S>> {
        self.observe_window(time, time, exchange, current)
    }

    /// An exchange figure that is the state at some moment between `from` and `to` (a REST snapshot
    /// taken over several requests): it agrees when any state we were in during that window agrees.
    /// Decidable once a change later than `to` is in (or on settle); until then it waits, and agrees as
    /// soon as our state reaches it.
    pub(crate) fn observe_window(
        &mut self,
        from: Timestamp,
        to: Timestamp,
        exchange: S,
        current: &S,
    ) -> Option<Verdict<S>> {
        if self.superseded.is_some_and(|s| to < s) {
            return None;
        }
        match self.last_change {
            Some(last) if to < last => {
                // Newer changes are in already: compare with what held during the window.
                let candidates = self.states_during(from, to);
                if candidates.iter().any(|s| s.agrees(&exchange)) {
                    return Some(Verdict::Agrees {
                        exchange,
                        current: false,
                    });
                }
                // No state kept covers its time (older than the history kept, or than the figure's
                // first change). Judged against the current state, the row would be reported and its
                // difference from a state it never described carried forward; it is left unjudged
                // instead, and the next row (the exchange sends one with every change) judges the
                // figure.
                let ours = candidates.last().cloned()?;
                Some(Verdict::Disagrees {
                    ours,
                    exchange,
                    time: to,
                    stale: true,
                })
            }
            last => {
                if current.agrees(&exchange) {
                    return Some(Verdict::Agrees {
                        exchange,
                        current: true,
                    });
                }
                // A state reached earlier in the window (ties at the latest time included).
                let earlier = last.is_some_and(|l| l >= from)
                    && (self.ties.iter().any(|s| s.agrees(&exchange))
                        || self
                            .states_during(from, to)
                            .iter()
                            .any(|s| s.agrees(&exchange)));
                if earlier {
                    return Some(Verdict::Agrees {
                        exchange,
                        current: false,
                    });
                }
                self.pending.push((to, exchange));
                None
            }
        }
    }

    /// Judges every pending row stamped at or before `until` against `current`.
    pub(crate) fn settle(&mut self, until: Timestamp, current: &S, out: &mut Vec<Verdict<S>>) {
        if !self.pending.is_empty() {
            self.judge_pending(|t| t <= until, current, out);
        }
    }

    fn judge_pending(
        &mut self,
        decidable: impl Fn(Timestamp) -> bool,
        current: &S,
        out: &mut Vec<Verdict<S>>,
    ) {
        let mut kept = Vec::new();
        // Judged oldest first; every verdict leads the caller to adopt the row's figure, so each
        // later row is compared with the figure adopted before it.
        self.pending.sort_by_key(|(t, _)| *t);
        let mut ours = current.clone();
        for (time, exchange) in self.pending.drain(..) {
            if !decidable(time) {
                kept.push((time, exchange));
            } else if ours.agrees(&exchange) {
                ours = exchange.clone();
                out.push(Verdict::Agrees {
                    exchange,
                    current: true,
                });
            } else {
                let previous = std::mem::replace(&mut ours, exchange.clone());
                out.push(Verdict::Disagrees {
                    ours: previous,
                    exchange,
                    time,
                    stale: false,
                });
            }
        }
        self.pending = kept;
    }

    /// The states that may have held at some moment from `from` to `to`, oldest first: the state
    /// that held when the window opened, every state reached inside it, and the current time slot's
    /// states when it lies inside.
    fn states_during(&self, from: Timestamp, to: Timestamp) -> Vec<S> {
        let mut out = Vec::new();
        let mut best: Option<&S> = None;
        for (t, s) in &self.history {
            if *t < from {
                best = Some(s);
            } else if *t <= to {
                out.push(s.clone());
            }
        }
        if let Some(s) = best {
            out.insert(0, s.clone());
        }
        if self.last_change.is_some_and(|l| l >= from && l <= to) {
            out.extend(self.ties.iter().cloned());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    struct N(i64);
    impl Figure for N {
        fn agrees(&self, e: &Self) -> bool {
            self.0 == e.0
        }
    }

    fn change(c: &mut Checked<N>, t: i64, from: i64, to: i64) -> Vec<Verdict<N>> {
        let mut out = Vec::new();
        c.before_change(Timestamp(t), &N(from), &mut out);
        c.after_change(&N(to), &mut out);
        out
    }

    #[test]
    fn a_late_row_older_than_every_state_kept_is_left_unjudged() {
        let mut c = Checked::default();
        // 40 changes at 10, 20, …, 400 take the figure from 0 to 40; the history keeps the last few.
        for i in 1..=40 {
            assert!(change(&mut c, 10 * i, i - 1, i).is_empty());
        }
        // A row stamped 5 reports 0, which held then; nothing kept says so any more, and the current 40
        // is not what it describes.
        assert_eq!(c.observe(Timestamp(5), N(0), &N(40)), None);
        assert_eq!(c.pending_len(), 0);
        // A late row inside the history is still judged against what held at its time (39 at 395).
        assert_eq!(
            c.observe(Timestamp(395), N(38), &N(40)),
            Some(Verdict::Disagrees {
                ours: N(39),
                exchange: N(38),
                time: Timestamp(395),
                stale: true,
            })
        );
        assert_eq!(
            c.observe(Timestamp(395), N(39), &N(40)),
            Some(Verdict::Agrees {
                exchange: N(39),
                current: false,
            })
        );
    }

    #[test]
    fn row_after_its_change_agrees_at_once() {
        let mut c = Checked::default();
        change(&mut c, 10, 0, 5);
        assert_eq!(
            c.observe(Timestamp(10), N(5), &N(5)),
            Some(Verdict::Agrees {
                exchange: N(5),
                current: true
            })
        );
    }

    #[test]
    fn row_before_its_change_waits_then_agrees() {
        let mut c = Checked::default();
        assert_eq!(c.observe(Timestamp(10), N(5), &N(0)), None);
        assert_eq!(c.pending_len(), 1);
        let out = change(&mut c, 10, 0, 5);
        assert_eq!(
            out,
            vec![Verdict::Agrees {
                exchange: N(5),
                current: true
            }]
        );
        assert_eq!(c.pending_len(), 0);
    }

    #[test]
    fn pending_row_is_judged_when_a_later_change_arrives() {
        let mut c = Checked::default();
        assert_eq!(c.observe(Timestamp(10), N(7), &N(0)), None);
        let out = change(&mut c, 10, 0, 5);
        assert!(out.is_empty(), "ties at the same time keep the row waiting");
        let out = change(&mut c, 11, 5, 6);
        assert_eq!(
            out,
            vec![Verdict::Disagrees {
                ours: N(5),
                exchange: N(7),
                time: Timestamp(10),
                stale: false
            }]
        );
    }

    #[test]
    fn row_matching_an_intermediate_tie_state_agrees() {
        let mut c = Checked::default();
        change(&mut c, 10, 0, 1);
        change(&mut c, 10, 1, 2);
        // A row stamped 10 that reports the state after the first of two fills at 10, seen late.
        change(&mut c, 11, 2, 3);
        assert_eq!(
            c.observe(Timestamp(10), N(1), &N(3)),
            Some(Verdict::Agrees {
                exchange: N(1),
                current: false
            })
        );
        assert_eq!(
            c.observe(Timestamp(10), N(2), &N(3)),
            Some(Verdict::Agrees {
                exchange: N(2),
                current: false
            })
        );
        assert!(matches!(
            c.observe(Timestamp(10), N(9), &N(3)),
            Some(Verdict::Disagrees { stale: true, .. })
        ));
    }

    #[test]
    fn rows_judged_together_compare_with_the_figure_adopted_before_them() {
        let mut c = Checked::default();
        change(&mut c, 10, 0, 5);
        assert_eq!(c.observe(Timestamp(12), N(8), &N(5)), None);
        assert_eq!(c.observe(Timestamp(13), N(9), &N(5)), None);
        let mut out = Vec::new();
        c.settle(Timestamp(20), &N(5), &mut out);
        let disagreement = |ours, exchange, t| Verdict::Disagrees {
            ours: N(ours),
            exchange: N(exchange),
            time: Timestamp(t),
            stale: false,
        };
        assert_eq!(out, vec![disagreement(5, 8, 12), disagreement(8, 9, 13)]);
    }

    #[test]
    fn settle_judges_what_is_left() {
        let mut c = Checked::default();
        change(&mut c, 10, 0, 5);
        assert_eq!(c.observe(Timestamp(12), N(8), &N(5)), None);
        let mut out = Vec::new();
        c.settle(Timestamp(11), &N(5), &mut out);
        assert!(out.is_empty());
        c.settle(Timestamp(12), &N(5), &mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn rows_older_than_a_snapshot_are_not_judged() {
        let mut c = Checked::default();
        change(&mut c, 10, 0, 5);
        assert_eq!(c.observe(Timestamp(12), N(8), &N(5)), None);
        change(&mut c, 14, 5, 6);
        c.supersede(Timestamp(20));
        assert_eq!(
            c.observe(Timestamp(20), N(6), &N(6)),
            Some(Verdict::Agrees {
                exchange: N(6),
                current: true
            })
        );
        // A row from before the snapshot, delivered late by the stream: ignored, not pending.
        assert_eq!(c.observe(Timestamp(15), N(99), &N(6)), None);
        assert_eq!(c.pending_len(), 0);
        // A newer row is judged as usual.
        assert!(c.observe(Timestamp(21), N(7), &N(6)).is_none());
        assert_eq!(c.pending_len(), 1);
    }

    #[test]
    fn baseline_covers_earlier_changes() {
        let mut c = Checked::default();
        c.set_baseline(Timestamp(10), N(5));
        assert!(c.covered_by_baseline(Timestamp(10)));
        assert!(!c.covered_by_baseline(Timestamp(11)));
    }
}
