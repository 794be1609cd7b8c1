//! The labrpc-like network: how long a message takes and whether it is lost.
//!
//! The core's RPCs are one-way messages, so a labrpc call is a request message and its reply
//! message. Connectivity is checked where labrpc checks it: a server cut off cannot send, and a
//! message to or from a server that is disconnected when it arrives is lost (see `sim`).

use std::time::Duration;

use raft_impl::Message;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Probability, in per mille, that an unreliable network loses a request or a reply.
const LOSS_PER_MILLE: u32 = 100;
/// Largest delay of an unreliable network, in ms (labrpc: `rand.Int() % 27`).
const MAX_UNRELIABLE_DELAY_MS: u64 = 26;
/// A reliable network still takes some time, so that messages sent in one step interleave
/// with later events instead of arriving all at once; 100 µs to 1 ms.
const RELIABLE_DELAY_US: std::ops::RangeInclusive<u64> = 100..=1_000;

/// The network's mode, switched by the tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetConfig {
    pub unreliable: bool,
    /// labrpc's long reordering: most replies are held back for a long time.
    pub long_reordering: bool,
}

/// Whether a message is a request (counted as an RPC, as labrpc counts calls) or a reply.
pub fn is_request<C>(msg: &Message<C>) -> bool {
    matches!(
        msg,
        Message::RequestVote { .. }
            | Message::AppendEntries { .. }
            | Message::PreVote { .. }
            | Message::InstallSnapshot { .. }
    )
}

impl NetConfig {
    /// The delay before `msg` arrives, or `None` if the network loses it.
    pub fn fate<C>(&self, msg: &Message<C>, rng: &mut ChaCha8Rng) -> Option<Duration> {
        self.fate_of(!is_request(msg), rng)
    }

    /// The fate of a request (`reply == false`) or of a reply: the delay before it arrives, or
    /// `None` if lost. Client messages of a service (see `clerk`) take the same fates as
    /// Raft's.
    pub fn fate_of(&self, reply: bool, rng: &mut ChaCha8Rng) -> Option<Duration> {
        let mut delay = if self.unreliable {
            if rng.random_ratio(LOSS_PER_MILLE, 1000) {
                return None;
            }
            Duration::from_millis(rng.random_range(0..=MAX_UNRELIABLE_DELAY_MS))
        } else {
            Duration::from_micros(rng.random_range(RELIABLE_DELAY_US))
        };
        // labrpc: `rand.Intn(900) < 600`, then `200 + rand.Intn(1 + rand.Intn(2000))` ms.
        if self.long_reordering && reply && rng.random_ratio(2, 3) {
            let spread = rng.random_range(0..2000u64);
            delay += Duration::from_millis(200 + rng.random_range(0..=spread));
        }
        Some(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn request() -> Message<u64> {
        Message::RequestVote {
            term: 1,
            last_log_index: 0,
            last_log_term: 0,
        }
    }

    fn reply() -> Message<u64> {
        Message::RequestVoteReply {
            term: 1,
            granted: true,
        }
    }

    #[test]
    fn reliable_network_delivers_everything_within_a_millisecond() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let net = NetConfig::default();
        for _ in 0..10_000 {
            let delay = net.fate(&request(), &mut rng).unwrap();
            assert!(delay <= Duration::from_millis(1));
        }
    }

    #[test]
    fn unreliable_network_loses_about_a_tenth_and_delays_up_to_26_ms() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let net = NetConfig {
            unreliable: true,
            long_reordering: false,
        };
        let fates: Vec<_> = (0..10_000).map(|_| net.fate(&reply(), &mut rng)).collect();
        let lost = fates.iter().filter(|f| f.is_none()).count();
        assert!((800..1200).contains(&lost), "lost {lost} of 10000");
        assert!(fates
            .iter()
            .flatten()
            .all(|d| *d <= Duration::from_millis(MAX_UNRELIABLE_DELAY_MS)));
    }

    #[test]
    fn long_reordering_holds_back_replies_only() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let net = NetConfig {
            unreliable: false,
            long_reordering: true,
        };
        let long = Duration::from_millis(200);
        let held = (0..3_000)
            .filter(|_| net.fate(&reply(), &mut rng).unwrap() >= long)
            .count();
        assert!((1800..2200).contains(&held), "held back {held} of 3000");
        assert!((0..3_000).all(|_| net.fate(&request(), &mut rng).unwrap() < long));
    }
}
