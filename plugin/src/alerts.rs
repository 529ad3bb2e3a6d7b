//! Deny alerts: refusals become JSON events POSTed in batches to the bundle's `alerts.cluster`
//! by the root context's timer. The queue is bounded per worker; when it is full new events
//! are dropped and counted, and a slow or failing sink is never waited for: a request only
//! appends to an in-memory queue.

use std::collections::VecDeque;
use std::time::Duration;

use policies::bundle::schema::Alerts;
use proxy_wasm::hostcalls;

/// How long one POST may take before Envoy gives up on it.
const POST_TIMEOUT: Duration = Duration::from_secs(5);

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

    /// Timer work: send one batch when one is full or the oldest waited long enough. Returns
    /// the number of events that could not even be dispatched (counted as failed).
    pub fn tick(&mut self, now: u64) -> u64 {
        if self.in_flight.is_some() || self.events.is_empty() {
            return 0;
        }
        let due = self.events.len() >= self.batch_size
            || now.saturating_sub(self.last_flush) >= self.flush_interval;
        if !due {
            return 0;
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
        let headers = vec![
            (":method", "POST"),
            (":path", self.path.as_str()),
            (":authority", self.cluster.as_str()),
            ("content-type", "application/json"),
        ];
        match hostcalls::dispatch_http_call(
            &self.cluster,
            headers,
            Some(body.as_bytes()),
            Vec::new(),
            POST_TIMEOUT,
        ) {
            Ok(token) => {
                self.in_flight = Some((token, n as u64));
                0
            }
            Err(status) => {
                log::warn!("bedrock-guard: deny alerts not sent ({status:?}); {n} dropped");
                n as u64
            }
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
