//! The abuse penalty: addresses whose HTTP/2 connections were just closed for abuse (rapid
//! reset, a CONTINUATION flood, provoked resets) wait before their next connections are read.
//!
//! h2's bounds end each abusive connection after a few frames, but a client that opens the next
//! one as soon as the last is closed still costs a handshake and those frames thousands of times a
//! second, CPU taken from every other client (measured in docs/capture.md: +2.4 ms at the good
//! client's p99 under a rapid-reset flood of ~3,700 connections a second). Holding the next
//! connection unread for the penalty turns that into one connection per penalty per concurrent
//! abusive connection, while a client that shares the address is only delayed on its new
//! connections, never refused: its open connections are served as before.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Addresses remembered at once. Past it the expired ones are forgotten, and if that is not
/// enough a new address goes unpenalised: the table cannot be grown without bound by an attacker
/// with many addresses (each of which still meets h2's own bounds).
const MAX_ADDRESSES: usize = 65_536;

/// Addresses under penalty, each with the instant its penalty ends.
#[derive(Debug)]
pub struct Penalties {
    penalty: Duration,
    table: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    /// Each address under penalty, with the instant its penalty ends.
    until: HashMap<IpAddr, Instant>,
    /// When a full table may next be swept of ended penalties.
    next_sweep: Option<Instant>,
}

impl Penalties {
    /// A zero `penalty` turns the penalty off.
    pub fn new(penalty: Duration) -> Self {
        Self { penalty, table: Mutex::new(Table::default()) }
    }

    /// A connection from `addr` was closed for abuse at `now`: its address waits for the penalty.
    pub fn abused(&self, addr: IpAddr, now: Instant) {
        if self.penalty.is_zero() {
            return;
        }
        let Ok(mut table) = self.table.lock() else { return };
        let Table { until, next_sweep } = &mut *table;
        let k = key(addr);
        // A full table is swept at most once per penalty: an attacker with more addresses than
        // it holds cannot make every close a walk over all of them.
        if until.len() >= MAX_ADDRESSES && !until.contains_key(&k) && next_sweep.is_none_or(|t| now >= t) {
            until.retain(|_, end| *end > now);
            *next_sweep = Some(now + self.penalty);
        }
        if until.len() < MAX_ADDRESSES || until.contains_key(&k) {
            until.insert(k, now + self.penalty);
        }
    }

    /// When a new connection from `addr`, accepted at `now`, may be read: `None` when its address
    /// is under no penalty.
    pub fn wait_until(&self, addr: IpAddr, now: Instant) -> Option<Instant> {
        if self.penalty.is_zero() {
            return None;
        }
        let mut table = self.table.lock().ok()?;
        let until = &mut table.until;
        let k = key(addr);
        let end = *until.get(&k)?;
        if end > now {
            Some(end)
        } else {
            until.remove(&k);
            None
        }
    }
}

/// What a penalty is kept by: an IPv4 address, or an IPv6 address's /64 (one host is commonly
/// given a whole /64, so a penalty on the single address would be stepped around by the next
/// one). An IPv4-mapped IPv6 address is its IPv4 address.
fn key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn addresses_are_kept_by_host_and_ipv6_by_its_slash_64() {
        assert_eq!(key(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(key(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")), key(ip("2001:db8:1:2::9")));
        assert_ne!(key(ip("2001:db8:1:3::1")), key(ip("2001:db8:1:2::1")));
    }

    #[test]
    fn a_penalty_holds_its_address_alone_and_ends() {
        let p = Penalties::new(Duration::from_secs(1));
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        assert_eq!(p.wait_until(ip("127.0.0.2"), start), None, "no abuse, no wait");
        p.abused(ip("127.0.0.2"), start);
        assert_eq!(p.wait_until(ip("127.0.0.2"), at(10)), Some(at(1000)));
        assert_eq!(p.wait_until(ip("127.0.0.1"), at(10)), None, "another address is not held");
        // Abuse again: the penalty runs from the last one.
        p.abused(ip("127.0.0.2"), at(600));
        assert_eq!(p.wait_until(ip("127.0.0.2"), at(1200)), Some(at(1600)));
        assert_eq!(p.wait_until(ip("127.0.0.2"), at(1600)), None, "the penalty ended");
        assert!(p.table.lock().expect("lock").until.is_empty(), "an ended penalty is forgotten");

        let off = Penalties::new(Duration::ZERO);
        off.abused(ip("127.0.0.2"), start);
        assert_eq!(off.wait_until(ip("127.0.0.2"), start), None, "a zero penalty is off");
    }

    #[test]
    fn the_table_is_bounded() {
        let p = Penalties::new(Duration::from_secs(1));
        let now = Instant::now();
        for i in 0..MAX_ADDRESSES as u32 {
            p.abused(IpAddr::V4(i.into()), now);
        }
        // Full of live penalties: a new address goes unpenalised, a known one is renewed.
        p.abused(ip("255.255.255.255"), now);
        assert_eq!(p.wait_until(ip("255.255.255.255"), now), None);
        p.abused(IpAddr::V4(7u32.into()), now + Duration::from_millis(500));
        assert_eq!(p.wait_until(IpAddr::V4(7u32.into()), now), Some(now + Duration::from_millis(1500)));
        // Once they have ended, the expired are forgotten to make room.
        let later = now + Duration::from_secs(2);
        p.abused(ip("255.255.255.255"), later);
        assert!(p.wait_until(ip("255.255.255.255"), later).is_some());
        assert_eq!(p.table.lock().expect("lock").until.len(), 1);
    }
}
