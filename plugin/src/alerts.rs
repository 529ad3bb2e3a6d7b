//! Deny alerts: refusals become JSON events POSTed in batches to the bundle's `alerts.cluster`
//! by the root context's timer. The queue is bounded per worker; when it is full new events
//! are dropped and counted, and a slow or failing sink is never waited for: a request only
//! appends to an in-memory queue.
//!
//! The queue is a plain state machine: [`AlertQueue::tick`] returns the [`Post`] to send (or
//! nothing), the root context dispatches it and reports back with [`AlertQueue::dispatched`]
//! and [`AlertQueue::on_response`]. No host call happens in here.

use std::collections::VecDeque;
use std::time::Duration;

use policies::bundle::schema::Alerts;

/// How long one POST may take before Envoy gives up on it.
pub const POST_TIMEOUT: Duration = Duration::from_secs(5);

/// One batch to POST to the sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Post {
    /// The sink's cluster (also the `:authority`).
    pub cluster: String,
    /// The request path.
    pub path: String,
    /// A JSON array of EventBridge-style envelopes, one per event.
    pub body: String,
    /// How many events the batch carries.
    pub events: u64,
}

impl Post {
    /// The request headers of the POST.
    pub fn headers(&self) -> [(&str, &str); 4] {
        [
            (":method", "POST"),
            (":path", self.path.as_str()),
            (":authority", self.cluster.as_str()),
            ("content-type", "application/json"),
        ]
    }
}

pub struct AlertQueue {
    cluster: String,
    path: String,
    batch_size: usize,
    flush_interval: u64,
    capacity: usize,
    pub include_dry_run: bool,
    events: VecDeque<String>,
    last_flush: u64,
    /// The POST in flight: its token and how many events it carries.
    in_flight: Option<(u32, u64)>,
}

impl AlertQueue {
    pub fn new(config: &Alerts) -> AlertQueue {
        AlertQueue {
            cluster: config.cluster.clone().unwrap_or_default(),
            path: config.path.clone().unwrap_or_default(),
            batch_size: usize::try_from(config.batch_size).unwrap_or(1).max(1),
            flush_interval: config.flush_interval_seconds,
            capacity: usize::try_from(config.queue_capacity).unwrap_or(1).max(1),
            include_dry_run: config.include_dry_run,
            events: VecDeque::new(),
            last_flush: 0,
            in_flight: None,
        }
    }

    /// Queue one event (an already-escaped JSON audit record). Returns false when the queue is
    /// full and the event is dropped.
    pub fn push(&mut self, record_json: String) -> bool {
        if self.events.len() >= self.capacity {
            return false;
        }
        self.events.push_back(record_json);
        true
    }

    /// Timer work: the batch to send now, when one is full or the oldest event waited long
    /// enough, and no POST is in flight. The events leave the queue; report the dispatch with
    /// [`AlertQueue::dispatched`].
    pub fn tick(&mut self, now: u64) -> Option<Post> {
        if self.in_flight.is_some() || self.events.is_empty() {
            return None;
        }
        let due = self.events.len() >= self.batch_size
            || now.saturating_sub(self.last_flush) >= self.flush_interval;
        if !due {
            return None;
        }
        self.last_flush = now;
        let n = self.events.len().min(self.batch_size);
        let mut body = String::from("[");
        for (i, record) in self.events.drain(..n).enumerate() {
            if i > 0 {
                body.push(',');
            }
            // EventBridge-style envelope around the audit record.
            body.push_str("{\"source\":\"bedrock-guard\",\"detail-type\":\"Bedrock request denied\",\"detail\":");
            body.push_str(&record);
            body.push('}');
        }
        body.push(']');
        Some(Post {
            cluster: self.cluster.clone(),
            path: self.path.clone(),
            body,
            events: n as u64,
        })
    }

    /// The POST of `post` was started (`Some(token)`) or could not be (`None`). Returns the
    /// number of events that could not even be dispatched (counted as failed).
    pub fn dispatched(&mut self, post: &Post, token: Option<u32>) -> u64 {
        match token {
            Some(token) => {
                self.in_flight = Some((token, post.events));
                0
            }
            None => post.events,
        }
    }

    /// A POST finished: the number of events it carried, when `token` is ours.
    pub fn on_response(&mut self, token: u32) -> Option<u64> {
        match self.in_flight {
            Some((t, n)) if t == token => {
                self.in_flight = None;
                Some(n)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    //! Batching as a state machine: a clock and reported dispatches, no host.
    use super::*;

    fn queue(batch_size: u64, flush: u64, capacity: u64) -> AlertQueue {
        AlertQueue::new(&Alerts {
            cluster: Some("alerts".into()),
            path: Some("/events".into()),
            batch_size,
            flush_interval_seconds: flush,
            queue_capacity: capacity,
            include_dry_run: true,
        })
    }

    fn details(post: &Post) -> Vec<serde_json::Value> {
        let batch: Vec<serde_json::Value> = serde_json::from_str(&post.body).unwrap();
        batch
            .into_iter()
            .map(|e| {
                assert_eq!(e["source"], "bedrock-guard");
                assert_eq!(e["detail-type"], "Bedrock request denied");
                e["detail"].clone()
            })
            .collect()
    }

    #[test]
    fn a_full_batch_goes_at_once_and_a_partial_one_after_the_interval() {
        let mut q = queue(2, 10, 100);
        q.last_flush = 1000;
        assert!(q.push(r#"{"n":1}"#.into()));
        assert_eq!(q.tick(1001), None, "neither full nor old enough");
        assert!(q.push(r#"{"n":2}"#.into()));
        assert!(q.push(r#"{"n":3}"#.into()));
        let post = q.tick(1002).unwrap();
        assert_eq!(post.events, 2);
        assert_eq!(post.headers()[1], (":path", "/events"));
        assert_eq!(post.headers()[2], (":authority", "alerts"));
        let sent = details(&post);
        assert_eq!(sent[0]["n"], 1);
        assert_eq!(sent[1]["n"], 2);
        assert_eq!(q.dispatched(&post, Some(5)), 0);
        assert_eq!(q.tick(2000), None, "one POST in flight at a time");
        assert_eq!(q.on_response(6), None, "not ours");
        assert_eq!(q.on_response(5), Some(2));
        assert_eq!(
            q.tick(1011),
            None,
            "the partial batch waits for the interval"
        );
        let post = q.tick(1012).unwrap();
        assert_eq!(details(&post).len(), 1);
    }

    #[test]
    fn a_full_queue_drops_new_events_and_a_failed_dispatch_counts_them() {
        let mut q = queue(10, 1, 3);
        for _ in 0..3 {
            assert!(q.push("{}".into()));
        }
        assert!(!q.push("{}".into()), "capacity 3");
        let post = q.tick(5).unwrap();
        assert_eq!(post.events, 3);
        assert_eq!(q.dispatched(&post, None), 3, "counted as failed");
        assert!(q.push("{}".into()), "room again");
        assert!(
            q.tick(6).is_some(),
            "nothing in flight after a failed dispatch"
        );
    }
}
