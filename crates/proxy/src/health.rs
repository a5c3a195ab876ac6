//! Rise/fall hysteresis: a backend changes health only after `rise` good or `fall` bad
//! results in a row, so a node that flaps while it donates does not move traffic back
//! and forth. A hard failure (refused or reset connection) bypasses it.

/// One health verdict with hysteresis. Starts unknown: the first result decides at once,
/// so a proxy that starts beside a healthy cluster routes without waiting `rise` periods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hysteresis {
    healthy: Option<bool>,
    streak: u32,
}

impl Default for Hysteresis {
    fn default() -> Self {
        Hysteresis::new()
    }
}

impl Hysteresis {
    pub fn new() -> Hysteresis {
        Hysteresis {
            healthy: None,
            streak: 0,
        }
    }

    /// False until the first result: nothing is known yet.
    pub fn is_known(&self) -> bool {
        self.healthy.is_some()
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy == Some(true)
    }

    /// Records one probe result; returns the new state when it flipped.
    pub fn observe(&mut self, ok: bool, rise: u32, fall: u32) -> Option<bool> {
        match self.healthy {
            None => {
                self.healthy = Some(ok);
                self.streak = 0;
                Some(ok)
            }
            Some(current) if current == ok => {
                self.streak = 0;
                None
            }
            Some(_) => {
                self.streak += 1;
                let needed = if ok { rise } else { fall };
                if self.streak >= needed.max(1) {
                    self.healthy = Some(ok);
                    self.streak = 0;
                    Some(ok)
                } else {
                    None
                }
            }
        }
    }

    /// Marks the backend down at once; returns true when it was not down already.
    pub fn force_down(&mut self) -> bool {
        let changed = self.healthy != Some(false);
        self.healthy = Some(false);
        self.streak = 0;
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::Hysteresis;

    /// `+` is a good result, `-` a bad one, `!` a hard failure; the expected string shows
    /// the state after each step (`U` up, `D` down).
    fn check(results: &str, rise: u32, fall: u32, expected: &str) {
        let mut health = Hysteresis::new();
        let got: String = results
            .chars()
            .map(|result| {
                match result {
                    '+' => {
                        health.observe(true, rise, fall);
                    }
                    '-' => {
                        health.observe(false, rise, fall);
                    }
                    '!' => {
                        health.force_down();
                    }
                    other => panic!("bad fixture char {other}"),
                }
                if health.is_healthy() {
                    'U'
                } else {
                    'D'
                }
            })
            .collect();
        assert_eq!(got, expected, "results {results} rise {rise} fall {fall}");
    }

    #[test]
    fn hysteresis() {
        check("+", 2, 2, "U");
        check("-", 2, 2, "D");
        check("+-+-+-", 2, 2, "UUUUUU"); // flapping never flips
        check("+--", 2, 2, "UUD");
        check("+--++", 2, 2, "UUDDU");
        check("+-++--", 3, 3, "UUUUUU");
        check("+!", 2, 2, "UD"); // a hard failure is at once
        check("+!+", 2, 2, "UDD");
        check("+!++", 2, 2, "UDDU");
        check("+-", 1, 1, "UD");
    }
}
