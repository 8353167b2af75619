//! Blocks of handle numbers reserved in the store, so that a handle names
//! one job for as long as its record is kept, also across restarts: the
//! store hands out each block once, and the engine asks for the next block
//! when half of the current one is used, long before it runs out.

use std::collections::VecDeque;

use crate::types::JobNo;

/// The handle numbers this engine may give out.
#[derive(Debug)]
pub(crate) struct HandleBlocks {
    /// Numbers per block; 0 when nothing is reserved (no store keeps
    /// records, so every number is the engine's).
    block: u64,
    /// The end (exclusive) of the block in use.
    end: JobNo,
    /// Blocks handed over and not yet in use, by their first number.
    spare: VecDeque<JobNo>,
    /// Another block was asked for and has not arrived.
    asked: bool,
    /// Numbers beyond every reserved block were given out (logged once).
    overran: bool,
}

impl HandleBlocks {
    /// The block `first .. first + block` (nothing reserved when `block`
    /// is 0).
    pub fn new(first: JobNo, block: u64) -> HandleBlocks {
        HandleBlocks { block, end: first.saturating_add(block), spare: VecDeque::new(), asked: false, overran: false }
    }

    /// The number to give the next job, when `next` is the next unused one;
    /// and whether to ask the store for another block now.
    pub fn take(&mut self, next: JobNo) -> (JobNo, bool) {
        if self.block == 0 {
            return (next, false);
        }
        let mut no = next;
        if no >= self.end {
            match self.spare.pop_front() {
                Some(first) => {
                    no = first.max(next);
                    self.end = first.saturating_add(self.block);
                }
                None if !self.overran => {
                    // Only if a million jobs arrived within one store round
                    // trip: numbers continue past the block, which the next
                    // reservation (starting where this block ends) covers
                    // when this server is the store's only user.
                    self.overran = true;
                    tracing::error!(next = no, "handle numbers ran past the reserved block before the next arrived");
                }
                None => {}
            }
        }
        let ask = !self.asked && self.spare.is_empty() && no >= self.end.saturating_sub(self.block / 2);
        if ask {
            self.asked = true;
        }
        (no, ask)
    }

    /// A block `first .. first + block` arrived from the store.
    pub fn add(&mut self, first: JobNo) {
        self.spare.push_back(first);
        self.asked = false;
        self.overran = false;
    }
}

#[cfg(test)]
mod tests {
    use super::HandleBlocks;

    #[test]
    fn asks_at_half_and_moves_to_the_next_block_at_the_end() {
        let mut h = HandleBlocks::new(100, 10);
        assert_eq!(h.take(100), (100, false));
        assert_eq!(h.take(104), (104, false));
        assert_eq!(h.take(105), (105, true), "half of the block used");
        assert_eq!(h.take(106), (106, false), "asked once");
        h.add(500);
        assert_eq!(h.take(109), (109, false));
        assert_eq!(h.take(110), (500, false), "the next block starts");
        assert_eq!(h.take(505), (505, true));
    }

    #[test]
    fn without_a_block_every_number_is_free() {
        let mut h = HandleBlocks::new(1, 0);
        assert_eq!(h.take(1), (1, false));
        assert_eq!(h.take(u64::MAX - 1), (u64::MAX - 1, false));
    }

    #[test]
    fn running_past_the_block_goes_on_and_is_covered_by_a_late_block() {
        let mut h = HandleBlocks::new(1, 4);
        assert_eq!(h.take(3), (3, true));
        assert_eq!(h.take(5), (5, false), "goes on past the block");
        h.add(5);
        assert_eq!(h.take(6), (6, false), "a block starting below the next number is used from it");
    }
}
