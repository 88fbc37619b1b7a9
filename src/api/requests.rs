//! The API's requests counted by action and answer code, for the metrics scrape
//! (`ipsec_server_api_requests_total{action,code}`).
//!
//! Bounded whatever a client sends: an action we do not implement is counted as `other`
//! (its name comes from the request), and the table holds at most [`MAX_SERIES`] pairs —
//! beyond that new codes of an action are counted under `other`. The codes themselves are
//! ours (`errors.rs`), but some carry a parameter name, so the bound is kept rather than
//! argued.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// The actions the API implements (the others are counted as `other`).
pub const ACTIONS: &[&str] = &[
    "CreateIpsecServer",
    "UpdateIpsecServer",
    "DeleteIpsecServer",
    "ListIpsecServers",
    "DescribeVpnGateway",
];

/// The code of a successful answer.
pub const SUCCESS: &str = "Success";

/// At most this many (action, code) pairs are counted apart.
pub const MAX_SERIES: usize = 256;

/// Requests by (action, code) since the API started.
#[derive(Debug, Default)]
pub struct RequestCounts {
    counts: Mutex<BTreeMap<(&'static str, String), u64>>,
}

impl RequestCounts {
    /// Counts one request of `action` answered with `code`.
    pub fn record(&self, action: &str, code: &str) {
        let action = ACTIONS
            .iter()
            .copied()
            .find(|a| *a == action)
            .unwrap_or("other");
        // Each update is one insert or addition: a poisoned lock holds consistent counts.
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let key = (action, code.to_owned());
        let key = if counts.contains_key(&key) || counts.len() < MAX_SERIES {
            key
        } else {
            (action, "other".to_owned())
        };
        *counts.entry(key).or_insert(0) += 1;
    }

    /// (action, code, count), sorted.
    pub fn snapshot(&self) -> Vec<(&'static str, String, u64)> {
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts
            .iter()
            .map(|((a, c), n)| (*a, c.clone(), *n))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_action_and_code_within_a_bound() {
        let r = RequestCounts::default();
        r.record("ListIpsecServers", SUCCESS);
        r.record("ListIpsecServers", SUCCESS);
        r.record("ListIpsecServers", "SignatureDoesNotMatch");
        r.record("DropDatabase", "InvalidAction.NotFound");
        assert_eq!(
            r.snapshot(),
            vec![
                ("ListIpsecServers", "SignatureDoesNotMatch".to_owned(), 1),
                ("ListIpsecServers", SUCCESS.to_owned(), 2),
                ("other", "InvalidAction.NotFound".to_owned(), 1),
            ]
        );
        for i in 0..10 * MAX_SERIES {
            r.record("CreateIpsecServer", &format!("MissingParam.X{i}"));
        }
        let snap = r.snapshot();
        assert!(
            snap.len() <= MAX_SERIES + ACTIONS.len() + 1,
            "{}",
            snap.len()
        );
        let folded = snap
            .iter()
            .find(|(a, c, _)| *a == "CreateIpsecServer" && c == "other")
            .map(|s| s.2);
        let counted: u64 = snap.iter().map(|s| s.2).sum();
        assert_eq!(counted, 4 + 10 * MAX_SERIES as u64, "nothing is lost");
        assert!(folded.unwrap_or(0) > 0);
    }
}
