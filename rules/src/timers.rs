//! Deadlines a core waits for, in time order. Entries are not removed when what they were for
//! goes away: the core checks each one when it falls due and ignores the stale ones, which
//! keeps every change O(log n) and the structure small (entries live at most one timeout).

use std::collections::BTreeSet;

use crate::time::Millis;

/// Deadlines, each with what it is for.
#[derive(Debug, Clone)]
pub struct Timers<T: Ord> {
    due: BTreeSet<(Millis, T)>,
}

impl<T: Ord> Default for Timers<T> {
    fn default() -> Self {
        Timers { due: BTreeSet::new() }
    }
}

impl<T: Ord + Clone> Timers<T> {
    /// Adds a deadline.
    pub fn at(&mut self, when: Millis, what: T) {
        self.due.insert((when, what));
    }

    /// The earliest deadline, if any.
    pub fn next(&self) -> Option<Millis> {
        self.due.first().map(|(when, _)| *when)
    }

    /// Takes the earliest deadline if it is due by `now`.
    pub fn pop_due(&mut self, now: Millis) -> Option<T> {
        match self.due.first() {
            Some((when, _)) if *when <= now => self.due.pop_first().map(|(_, what)| what),
            _ => None,
        }
    }

    /// How many deadlines are pending (stale ones included).
    pub fn len(&self) -> usize {
        self.due.len()
    }

    /// Whether no deadline is pending.
    pub fn is_empty(&self) -> bool {
        self.due.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_fall_due_in_time_order_and_not_before() {
        let mut timers = Timers::default();
        timers.at(30, "c");
        timers.at(10, "a");
        timers.at(20, "b");
        assert_eq!(timers.next(), Some(10));
        assert_eq!(timers.pop_due(9), None);
        assert_eq!(timers.pop_due(25), Some("a"));
        assert_eq!(timers.pop_due(25), Some("b"));
        assert_eq!(timers.pop_due(25), None);
        assert_eq!(timers.next(), Some(30));
    }
}
