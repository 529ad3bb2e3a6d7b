//! Deny alerts: refusals become events POSTed in batches to the bundle's `alerts.cluster` by the
//! root context's timer, either as a JSON array (`format: "json"`) or as Amazon EventBridge
//! `PutEvents` calls (`format: "eventbridge"`), which Envoy signs with `aws_request_signing`
//! configured as an upstream HTTP filter of that cluster (no credential enters the module).
//! The queue is bounded per worker; when it is full new events are dropped and counted, and a
//! slow or failing sink is never waited for: a request only appends to an in-memory queue.
//!
//! EventBridge answers are read: entries a `PutEvents` call reports as failed
//! (`FailedEntryCount`, per-entry `ErrorCode`) are counted; those with a retryable code
//! (`ThrottlingException`, `InternalFailure`: the PutEventsResultEntry API reference lists
//! these two as retryable) go back to the front of the queue, as does a whole batch answered
//! with 429, 5xx, a throttling error type or no answer at all (timeout, reset). Retries wait
//! 1, 2, 4 ... s (at most [`MAX_BACKOFF_SECONDS`]) and stop after `alerts.max_attempts` sends;
//! everything else is dropped and counted. Re-queued events count against the queue capacity,
//! as do events in flight, so memory stays bounded.
//!
//! The queue is a plain state machine: [`AlertQueue::tick`] returns the [`Post`] to send (or
//! nothing), the root context dispatches it and reports back with [`AlertQueue::dispatched`]
//! and [`AlertQueue::on_response`]. No host call happens in here.

use std::collections::VecDeque;
use std::time::Duration;

use policies::bundle::schema::Alerts;
use serde_json::{json, Value};

/// How long one POST may take before Envoy gives up on it.
pub const POST_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest wait before a retry, in seconds.
pub const MAX_BACKOFF_SECONDS: u64 = 30;

/// The most of a sink's answer that is read (a `PutEvents` answer for 10 entries is well
/// under 2 KiB).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Per-entry and whole-call error codes worth retrying: `ThrottlingException` and
/// `InternalFailure` (PutEventsResultEntry, "Retryable errors include"), plus the service's
/// common 5xx error types (`InternalException`, `ServiceUnavailable`).
const RETRYABLE_CODES: [&str; 4] = [
    "ThrottlingException",
    "InternalFailure",
    "InternalException",
    "ServiceUnavailable",
];

/// The `x-amz-target` of a `PutEvents` call.
pub const PUT_EVENTS_TARGET: &str = "AWSEvents.PutEvents";

/// Where the events go and in which shape.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Format {
    /// A JSON array of `{"source","detail-type","detail"}` envelopes POSTed to `path`.
    Json { path: String },
    /// `PutEvents` calls to `endpoint` for `event_bus`.
    EventBridge { event_bus: String, endpoint: String },
}

/// One batch to POST to the sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Post {
    /// The sink's cluster.
    pub cluster: String,
    /// The `:authority`: the cluster name (json) or the events endpoint host (eventbridge),
    /// which `aws_request_signing` signs as `host`.
    pub authority: String,
    /// The request path.
    pub path: String,
    /// `application/json` or `application/x-amz-json-1.1`.
    pub content_type: &'static str,
    /// `x-amz-target` (eventbridge only).
    pub target: Option<&'static str>,
    /// The request body.
    pub body: String,
    /// How many events the batch carries.
    pub events: u64,
}

impl Post {
    /// The request headers of the POST.
    pub fn headers(&self) -> Vec<(&str, &str)> {
        let mut headers = vec![
            (":method", "POST"),
            (":path", self.path.as_str()),
            (":authority", self.authority.as_str()),
            ("content-type", self.content_type),
        ];
        if let Some(target) = self.target {
            headers.push(("x-amz-target", target));
        }
        headers
    }
}

/// What the sink answered to a POST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response<'a> {
    /// An HTTP answer: its status and (up to [`MAX_RESPONSE_BYTES`] of) its body.
    Answered { status: u16, body: &'a [u8] },
    /// No answer: a timeout or a reset connection.
    NoAnswer,
}

/// What became of a finished POST's events, for the stats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Delivered.
    pub sent: u64,
    /// Given up: a non-retryable error, or the last attempt failed.
    pub failed: u64,
    /// Back in the queue for another attempt.
    pub retried: u64,
    /// Entries an EventBridge answer reported as failed (`FailedEntryCount`).
    pub failed_entries: u64,
}

/// A queued event and how often it was sent already.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pending {
    record: String,
    attempts: u64,
}

/// How one event of a finished batch fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Sent,
    Retry,
    Failed,
}

pub struct AlertQueue {
    cluster: String,
    format: Format,
    source: String,
    detail_type: String,
    batch_size: usize,
    flush_interval: u64,
    capacity: usize,
    max_attempts: u64,
    pub include_dry_run: bool,
    events: VecDeque<Pending>,
    last_flush: u64,
    /// No POST before this time (a retry's backoff).
    not_before: u64,
    /// The POST in flight: its token and the events it carries.
    in_flight: Option<(u32, Vec<Pending>)>,
}

impl AlertQueue {
    pub fn new(config: &Alerts) -> AlertQueue {
        let format = if config.is_eventbridge() {
            Format::EventBridge {
                event_bus: config.event_bus.clone().unwrap_or_default(),
                endpoint: config.endpoint.clone().unwrap_or_default(),
            }
        } else {
            Format::Json {
                path: config.path.clone().unwrap_or_default(),
            }
        };
        AlertQueue {
            cluster: config.cluster.clone().unwrap_or_default(),
            format,
            source: config.source().to_owned(),
            detail_type: config.detail_type().to_owned(),
            batch_size: usize::try_from(config.batch_size()).unwrap_or(1).max(1),
            flush_interval: config.flush_interval_seconds,
            capacity: usize::try_from(config.queue_capacity).unwrap_or(1).max(1),
            max_attempts: config.max_attempts().max(1),
            include_dry_run: config.include_dry_run,
            events: VecDeque::new(),
            last_flush: 0,
            not_before: 0,
            in_flight: None,
        }
    }

    /// Events held: queued, waiting for a retry or in flight.
    pub fn held(&self) -> usize {
        self.events.len() + self.in_flight.as_ref().map_or(0, |(_, batch)| batch.len())
    }

    /// Queue one event (an already-escaped JSON audit record). Returns false when the queue is
    /// full and the event is dropped.
    pub fn push(&mut self, record_json: String) -> bool {
        if self.held() >= self.capacity {
            return false;
        }
        self.events.push_back(Pending {
            record: record_json,
            attempts: 0,
        });
        true
    }

    /// Timer work: the batch to send now, when one is full or the oldest event waited long
    /// enough, no POST is in flight and no retry backoff is running. The events leave the
    /// queue; report the dispatch with [`AlertQueue::dispatched`].
    pub fn tick(&mut self, now: u64) -> Option<Post> {
        if self.in_flight.is_some() || self.events.is_empty() || now < self.not_before {
            return None;
        }
        let due = self.events.len() >= self.batch_size
            || now.saturating_sub(self.last_flush) >= self.flush_interval;
        if !due {
            return None;
        }
        self.last_flush = now;
        let n = self.events.len().min(self.batch_size);
        let batch: Vec<Pending> = self.events.drain(..n).collect();
        let post = self.post(&batch);
        // Held until the dispatch is reported (the token comes then).
        self.in_flight = Some((0, batch));
        Some(post)
    }

    fn post(&self, batch: &[Pending]) -> Post {
        match &self.format {
            Format::Json { path } => {
                let mut body = String::from("[");
                for (i, event) in batch.iter().enumerate() {
                    if i > 0 {
                        body.push(',');
                    }
                    body.push_str("{\"source\":");
                    body.push_str(&Value::from(self.source.as_str()).to_string());
                    body.push_str(",\"detail-type\":");
                    body.push_str(&Value::from(self.detail_type.as_str()).to_string());
                    body.push_str(",\"detail\":");
                    body.push_str(&event.record);
                    body.push('}');
                }
                body.push(']');
                Post {
                    cluster: self.cluster.clone(),
                    authority: self.cluster.clone(),
                    path: path.clone(),
                    content_type: "application/json",
                    target: None,
                    body,
                    events: batch.len() as u64,
                }
            }
            Format::EventBridge {
                event_bus,
                endpoint,
            } => {
                let entries: Vec<Value> = batch
                    .iter()
                    .map(|event| {
                        json!({
                            "Source": self.source,
                            "DetailType": self.detail_type,
                            // A JSON string holding the audit record.
                            "Detail": event.record.trim_end(),
                            "EventBusName": event_bus,
                        })
                    })
                    .collect();
                Post {
                    cluster: self.cluster.clone(),
                    authority: endpoint.clone(),
                    path: "/".to_owned(),
                    content_type: "application/x-amz-json-1.1",
                    target: Some(PUT_EVENTS_TARGET),
                    body: json!({ "Entries": entries }).to_string(),
                    events: batch.len() as u64,
                }
            }
        }
    }

    /// The POST of `post` was started (`Some(token)`) or could not be (`None`). Returns the
    /// number of events that could not even be dispatched (dropped, counted as failed).
    pub fn dispatched(&mut self, post: &Post, token: Option<u32>) -> u64 {
        match (token, &mut self.in_flight) {
            (Some(token), Some((t, _))) => {
                *t = token;
                0
            }
            _ => {
                self.in_flight = None;
                post.events
            }
        }
    }

    /// A POST finished: what became of its events, when `token` is ours. Retryable failures go
    /// back to the front of the queue and hold the next POST back for the backoff.
    pub fn on_response(&mut self, token: u32, response: Response, now: u64) -> Option<Outcome> {
        let batch = match self.in_flight.take() {
            Some((t, batch)) if t == token => batch,
            other => {
                self.in_flight = other;
                return None;
            }
        };
        let mut outcome = Outcome::default();
        let fates = self.fates(&batch, response, &mut outcome);
        let mut retry = Vec::new();
        for (mut event, fate) in batch.into_iter().zip(fates) {
            event.attempts += 1;
            match fate {
                Fate::Sent => outcome.sent += 1,
                Fate::Retry if event.attempts < self.max_attempts => retry.push(event),
                Fate::Retry | Fate::Failed => outcome.failed += 1,
            }
        }
        outcome.retried = retry.len() as u64;
        if let Some(attempts) = retry.iter().map(|e| e.attempts).max() {
            let exp = u32::try_from(attempts.saturating_sub(1))
                .unwrap_or(u32::MAX)
                .min(16);
            self.not_before = now + (1u64 << exp).min(MAX_BACKOFF_SECONDS);
        } else {
            self.not_before = 0;
        }
        for event in retry.into_iter().rev() {
            self.events.push_front(event);
        }
        Some(outcome)
    }

    /// How each event of a finished batch fared.
    fn fates(&self, batch: &[Pending], response: Response, outcome: &mut Outcome) -> Vec<Fate> {
        let all = |fate| vec![fate; batch.len()];
        let eventbridge = matches!(self.format, Format::EventBridge { .. });
        let (status, body) = match response {
            Response::NoAnswer => return all(Fate::Retry),
            Response::Answered { status, body } => (status, body),
        };
        if !(200..300).contains(&status) {
            let retryable = status == 429
                || status >= 500
                || (eventbridge && error_type(body).is_some_and(retryable_code));
            return all(if retryable { Fate::Retry } else { Fate::Failed });
        }
        if !eventbridge {
            return all(Fate::Sent);
        }
        let answer: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        if answer
            .get("FailedEntryCount")
            .and_then(Value::as_u64)
            .unwrap_or(0)
            == 0
        {
            return all(Fate::Sent);
        }
        let entries = answer.get("Entries").and_then(Value::as_array);
        (0..batch.len())
            .map(|i| {
                let code = entries
                    .and_then(|e| e.get(i))
                    .and_then(|e| e.get("ErrorCode"))
                    .and_then(Value::as_str);
                match code {
                    None => Fate::Sent,
                    Some(code) => {
                        outcome.failed_entries += 1;
                        if retryable_code(code) {
                            Fate::Retry
                        } else {
                            Fate::Failed
                        }
                    }
                }
            })
            .collect()
    }
}

fn retryable_code(code: &str) -> bool {
    RETRYABLE_CODES.contains(&code)
}

/// The error type of an AWS JSON-protocol error answer: `__type` (possibly
/// `namespace#Type`), e.g. `{"__type":"ThrottlingException","message":"..."}`.
fn error_type(body: &[u8]) -> Option<&'static str> {
    let answer: Value = serde_json::from_slice(body).ok()?;
    let kind = answer.get("__type")?.as_str()?;
    let kind = kind.rsplit('#').next().unwrap_or(kind);
    RETRYABLE_CODES.iter().copied().find(|c| *c == kind)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    //! Batching, EventBridge bodies, partial failures and retries as a state machine: a clock
    //! and reported dispatches and answers, no host.
    use super::*;

    fn config(v: serde_json::Value) -> Alerts {
        serde_json::from_value(v).unwrap()
    }

    fn queue(batch_size: u64, flush: u64, capacity: u64) -> AlertQueue {
        AlertQueue::new(&config(json!({
            "cluster": "alerts", "path": "/events", "batch_size": batch_size,
            "flush_interval_seconds": flush, "queue_capacity": capacity,
        })))
    }

    fn eventbridge(batch_size: u64, capacity: u64, max_attempts: u64) -> AlertQueue {
        AlertQueue::new(&config(json!({
            "cluster": "eventbridge", "format": "eventbridge",
            "event_bus": "security", "endpoint": "events.us-east-1.amazonaws.com",
            "batch_size": batch_size, "queue_capacity": capacity,
            "max_attempts": max_attempts, "flush_interval_seconds": 1,
        })))
    }

    fn ok<'a>() -> Response<'a> {
        Response::Answered {
            status: 200,
            body: br#"{"FailedEntryCount":0,"Entries":[]}"#,
        }
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

    /// The `n` of each entry's Detail (a string holding `{"n":...}`).
    fn entry_ns(post: &Post) -> Vec<u64> {
        let body: serde_json::Value = serde_json::from_str(&post.body).unwrap();
        body["Entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let detail: serde_json::Value =
                    serde_json::from_str(e["Detail"].as_str().unwrap()).unwrap();
                detail["n"].as_u64().unwrap()
            })
            .collect()
    }

    fn push_n(q: &mut AlertQueue, range: std::ops::Range<u64>) {
        for n in range {
            assert!(q.push(format!(r#"{{"n":{n}}}"#)));
        }
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
        assert_eq!(post.headers()[3], ("content-type", "application/json"));
        assert_eq!(post.headers().len(), 4, "no x-amz-target");
        let sent = details(&post);
        assert_eq!(sent[0]["n"], 1);
        assert_eq!(sent[1]["n"], 2);
        assert_eq!(q.dispatched(&post, Some(5)), 0);
        assert_eq!(q.tick(2000), None, "one POST in flight at a time");
        assert_eq!(q.on_response(6, ok(), 1002), None, "not ours");
        let out = q.on_response(5, ok(), 1002).unwrap();
        assert_eq!((out.sent, out.failed, out.retried), (2, 0, 0));
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

    #[test]
    fn the_default_capacity_holds_exactly_1000_events_then_drops() {
        // A bundle that sets no queue_capacity: 1000 (docs/operations.md, "Bounds").
        let mut q = AlertQueue::new(&config(json!({"cluster": "alerts", "path": "/events"})));
        for n in 0..1000 {
            assert!(q.push(format!(r#"{{"n":{n}}}"#)), "event {n} of 1000");
        }
        assert_eq!(q.held(), 1000);
        assert!(!q.push(r#"{"n":1000}"#.into()), "the 1001st is dropped");
        // Twenty of them in flight to a sink that does not answer still count against it.
        let post = q.tick(1).unwrap();
        assert_eq!(post.events, 20);
        q.dispatched(&post, Some(1));
        assert_eq!(q.held(), 1000);
        assert!(!q.push("{}".into()));
        // The sink answers: 20 leave, 20 fit again, the 21st does not.
        q.on_response(1, ok(), 2).unwrap();
        for _ in 0..20 {
            assert!(q.push("{}".into()));
        }
        assert!(!q.push("{}".into()));
    }

    #[test]
    fn json_sinks_are_not_retried() {
        let mut q = queue(10, 1, 100);
        push_n(&mut q, 0..3);
        let post = q.tick(5).unwrap();
        q.dispatched(&post, Some(1));
        let out = q.on_response(1, Response::NoAnswer, 6).unwrap();
        assert_eq!((out.sent, out.failed, out.retried), (0, 3, 0));
        let out_500 = {
            push_n(&mut q, 0..1);
            let post = q.tick(7).unwrap();
            q.dispatched(&post, Some(2));
            q.on_response(
                2,
                Response::Answered {
                    status: 500,
                    body: b"",
                },
                7,
            )
        };
        assert_eq!(out_500.unwrap().failed, 1);
        assert_eq!(q.held(), 0);
    }

    #[test]
    fn eventbridge_posts_are_put_events_calls_of_at_most_ten_entries() {
        let mut q = eventbridge(10, 100, 4);
        push_n(&mut q, 0..23);
        let post = q.tick(1).unwrap();
        assert_eq!(post.events, 10);
        assert_eq!(post.cluster, "eventbridge");
        let headers = post.headers();
        assert!(headers.contains(&(":method", "POST")));
        assert!(headers.contains(&(":path", "/")));
        assert!(headers.contains(&(":authority", "events.us-east-1.amazonaws.com")));
        assert!(headers.contains(&("content-type", "application/x-amz-json-1.1")));
        assert!(headers.contains(&("x-amz-target", "AWSEvents.PutEvents")));
        let body: serde_json::Value = serde_json::from_str(&post.body).unwrap();
        let entries = body["Entries"].as_array().unwrap();
        assert_eq!(entries.len(), 10);
        for e in entries {
            let mut keys: Vec<&str> = e.as_object().unwrap().keys().map(|k| k.as_str()).collect();
            keys.sort_unstable();
            assert_eq!(keys, ["Detail", "DetailType", "EventBusName", "Source"]);
            assert_eq!(e["Source"], "bedrock-guard");
            assert_eq!(e["DetailType"], "Bedrock request denied");
            assert_eq!(e["EventBusName"], "security");
            assert!(e["Detail"].is_string(), "Detail is a JSON string");
        }
        assert_eq!(entry_ns(&post), (0..10).collect::<Vec<_>>());
        q.dispatched(&post, Some(1));
        q.on_response(1, ok(), 1).unwrap();
        let post = q.tick(2).unwrap();
        assert_eq!(entry_ns(&post), (10..20).collect::<Vec<_>>());
        q.dispatched(&post, Some(2));
        q.on_response(2, ok(), 2).unwrap();
        assert_eq!(entry_ns(&q.tick(3).unwrap()), vec![20, 21, 22]);
    }

    #[test]
    fn a_partial_failure_retries_the_retryable_entries_first_and_drops_the_rest() {
        let mut q = eventbridge(4, 100, 3);
        push_n(&mut q, 0..6);
        let post = q.tick(10).unwrap();
        q.dispatched(&post, Some(7));
        let answer = br#"{"FailedEntryCount":3,"Entries":[
            {"EventId":"a"},
            {"ErrorCode":"ThrottlingException","ErrorMessage":"slow down"},
            {"ErrorCode":"MalformedDetail","ErrorMessage":"bad"},
            {"ErrorCode":"InternalFailure","ErrorMessage":"oops"}]}"#;
        let out = q
            .on_response(
                7,
                Response::Answered {
                    status: 200,
                    body: answer,
                },
                10,
            )
            .unwrap();
        assert_eq!(
            out,
            Outcome {
                sent: 1,
                failed: 1,
                retried: 2,
                failed_entries: 3
            }
        );
        assert_eq!(q.held(), 4, "2 re-queued + 2 waiting");
        assert_eq!(q.tick(10), None, "backoff: 1 s after the first attempt");
        let post = q.tick(11).unwrap();
        assert_eq!(
            entry_ns(&post),
            vec![1, 3, 4, 5],
            "re-queued at the front, in order"
        );
    }

    #[test]
    fn retries_back_off_and_stop_after_max_attempts() {
        let mut q = eventbridge(10, 100, 4);
        push_n(&mut q, 0..2);
        let mut now = 100;
        let mut waits = Vec::new();
        let mut token = 0;
        let mut total = Outcome::default();
        loop {
            let Some(post) = q.tick(now) else {
                now += 1;
                assert!(now < 200, "stuck");
                continue;
            };
            token += 1;
            q.dispatched(&post, Some(token));
            let out = q.on_response(token, Response::NoAnswer, now).unwrap();
            total.failed += out.failed;
            total.retried += out.retried;
            if q.held() == 0 {
                break;
            }
            let sent_at = now;
            while q.tick(now).is_none() {
                now += 1;
            }
            waits.push(now - sent_at);
            // Put it back as it was: the probe above took the batch out.
            let (_, batch) = q.in_flight.take().unwrap();
            for e in batch.into_iter().rev() {
                q.events.push_front(e);
            }
        }
        assert_eq!(
            waits,
            vec![1, 2, 4],
            "doubling backoff between the 4 attempts"
        );
        assert_eq!(token, 4, "max_attempts sends, then given up");
        assert_eq!((total.failed, total.retried), (2, 6));
    }

    #[test]
    fn whole_batch_errors_are_retried_or_dropped_by_kind() {
        let cases: [(u16, &[u8], bool); 6] = [
            (500, b"", true),
            (503, br#"{"__type":"ServiceUnavailable"}"#, true),
            (429, b"", true),
            (
                400,
                br#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
                true,
            ),
            (400, br#"{"__type":"ValidationException"}"#, false),
            (403, br#"{"__type":"AccessDeniedException"}"#, false),
        ];
        for (status, body, retried) in cases {
            let mut q = eventbridge(10, 100, 3);
            push_n(&mut q, 0..3);
            let post = q.tick(1).unwrap();
            q.dispatched(&post, Some(1));
            let out = q
                .on_response(1, Response::Answered { status, body }, 1)
                .unwrap();
            if retried {
                assert_eq!((out.retried, out.failed, q.held()), (3, 0, 3), "{status}");
            } else {
                assert_eq!((out.retried, out.failed, q.held()), (0, 3, 0), "{status}");
            }
            assert_eq!(out.failed_entries, 0);
        }
    }

    #[test]
    fn the_capacity_bounds_queued_in_flight_and_requeued_events_together() {
        let mut q = eventbridge(2, 3, 4);
        push_n(&mut q, 0..3);
        assert!(!q.push("{}".into()), "full");
        let post = q.tick(1).unwrap();
        q.dispatched(&post, Some(1));
        assert!(!q.push("{}".into()), "the two in flight still count");
        q.on_response(1, Response::NoAnswer, 1).unwrap();
        assert_eq!(q.held(), 3);
        assert!(!q.push("{}".into()), "re-queued events count");
        let post = q.tick(5).unwrap();
        q.dispatched(&post, Some(2));
        q.on_response(2, ok(), 5).unwrap();
        assert_eq!(q.held(), 1);
        assert!(q.push("{}".into()));
    }
}
