//! The HTTP context: one per request.
//!
//! The engine evaluates the request head once ([`policies::evaluate`]) and hands back one
//! value: where the request goes, the credential, the token's hash and the decision. The
//! filter builds the audit record from it, carries the decision out, and keeps the
//! [`Target`] for the response-time address check. Every host call goes through [`Host`], so
//! the unit tests below drive the whole request and response path without Envoy.
//!
//! Each request's final decision is counted in the stats exactly once, when the request ends
//! (`on_log`), from the same decision its audit record holds: a request let through and then
//! withheld at response time counts as the refusal, and a request refused because the identity
//! header could not be removed counts once, as that refusal.

use std::rc::Rc;
use std::sync::Arc;

use policies::audit::AuditRecord;
use policies::eventstream::{usage_from_headers, EventStreamReader};
use policies::identity::Authentication;
use policies::usage::UsageScanner;
use policies::{
    destination, evaluate, evaluate_body, Decision, HeadOutcome, Pending, Reason, RequestFacts,
    Target,
};
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, MapType};

use crate::host::Host;
use crate::metrics::{Label, Stat, Tally};
use crate::quarantine::{self, QUARANTINE_SECONDS};
use crate::{response, Shared};

/// Filter-state key (Envoy prefixes it with `wasm.`) holding the request's audit record.
pub const AUDIT_PROPERTY: &str = "bedrock_guard_audit";

/// Filter-state key (`wasm.bedrock_guard_emf`) holding the request's CloudWatch EMF line, when
/// `BEDROCK_GUARD_EMF_NAMESPACE` is set.
pub const EMF_PROPERTY: &str = "bedrock_guard_emf";

/// Record detail of a body-carried request that ended before its body was complete.
const INCOMPLETE_BODY_DETAIL: &str =
    "the request ended before its body was complete; it was not forwarded";

/// Refusal detail of a request to a quarantined endpoint (see `quarantine`).
const QUARANTINED_DETAIL: &str =
    "the endpoint answered from an address outside its PrivateLink ranges and is quarantined";

pub struct GuardHttp<H: Host> {
    host: H,
    context_id: u32,
    shared: Option<Rc<Shared>>,
    /// Set while a body-carried decision waits for the whole body.
    pending: Option<Pending>,
    /// Bytes of request body buffered so far (reported by the host).
    buffered: usize,
    request_id: String,
    started_ms: u64,
    /// Where the request is bound, as the engine found it (for the response-time check).
    target: Option<Target>,
    record: Option<AuditRecord>,
    /// The final decision, as the stats count it (in `on_log`, once).
    tally: Option<Tally>,
    /// The caller's `group` stat label (`none` until a caller is verified).
    group: Label,
    stream: Option<EventStreamReader>,
    /// A unary JSON answer's `usage` scanner (2xx `application/json` from the upstream).
    unary: Option<UsageScanner>,
    /// The upstream's status, and whether it was a throttle (set when the upstream answered).
    upstream: Option<(u16, bool)>,
    /// Ms from the request's headers to a stream's first complete event frame.
    first_frame_ms: Option<u64>,
    /// Prompt-cache tokens `(read, written)` the answer reported.
    cache_tokens: (Option<u64>, Option<u64>),
    /// The request was refused (locally, or its answer withheld).
    refused: bool,
    logged: bool,
}

impl<H: Host> GuardHttp<H> {
    pub fn new(host: H, context_id: u32, shared: Option<Rc<Shared>>) -> Self {
        GuardHttp {
            host,
            context_id,
            shared,
            pending: None,
            buffered: 0,
            request_id: String::new(),
            started_ms: 0,
            target: None,
            record: None,
            tally: None,
            group: Label::default(),
            stream: None,
            unary: None,
            upstream: None,
            first_frame_ms: None,
            cache_tokens: (None, None),
            refused: false,
            logged: false,
        }
    }

    /// Carry out a decision: continue untouched, or answer with the refusal.
    fn act(&mut self, decision: &Decision) -> Action {
        self.act_on(decision, false)
    }

    /// [`GuardHttp::act`]; `recorded`: the audit record was built from `decision` itself (the
    /// head's, by `AuditRecord::from_evaluation`), so it is not applied to the record again.
    fn act_on(&mut self, decision: &Decision, recorded: bool) -> Action {
        self.pending = None;
        if !decision.lets_through() {
            return self.refuse_on(decision, recorded);
        }
        if let Err(detail) = self.prepare_forward() {
            // Never forward a token we could not strip, nor a request the backstop would not
            // recognise.
            let mut refusal = Decision::deny(Reason::PolicyUnavailable, detail);
            refusal.operation = decision.operation;
            refusal.models.clone_from(&decision.models);
            return self.refuse(&refusal);
        }
        self.settle(decision, recorded);
        Action::Continue
    }

    /// What a request let through needs before it leaves: the identity token removed (it is
    /// not a signed header and never reaches Bedrock) and, in an anchored module, the mark the
    /// listener's RBAC backstop admits (`wasm.bedrock_guard_anchor` = the anchor id).
    fn prepare_forward(&self) -> Result<(), &'static str> {
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        if shared.policy.has_identity()
            && self
                .host
                .remove_request_header(shared.policy.identity_header())
                .is_err()
        {
            return Err("the identity header could not be removed");
        }
        if let Some(id) = shared.anchor_id.as_deref() {
            if self
                .host
                .set_property(&[crate::trust::ANCHOR_PROPERTY], id.as_bytes())
                .is_err()
            {
                return Err("the request could not be marked for the listener's backstop");
            }
        }
        Ok(())
    }

    /// Record `decision` as this request's final one: in the audit record, in the tally the
    /// stats count at the end, and as a deny alert when it is a refusal (or a dry-run one).
    /// `recorded`: the record was built from this very decision (nothing to apply).
    fn settle(&mut self, decision: &Decision, recorded: bool) {
        match &mut self.record {
            Some(record) if !recorded => {
                record.apply_decision(decision);
            }
            Some(_) => {}
            None => {
                // A refusal before the request's facts were gathered (no bundle in force, an
                // unreadable header map): the record still carries the id the answer carries.
                let mut record = AuditRecord::from_decision(decision, self.started_ms);
                record.request_id(&self.request_id);
                self.record = Some(record);
            }
        }
        if let Some(shared) = &self.shared {
            self.tally = Some(shared.metrics.borrow().tally(decision, self.group));
        }
        if !decision.is_allow() {
            self.alert(decision);
        }
    }

    /// Answer the request with the refusal for `decision`.
    fn refuse(&mut self, decision: &Decision) -> Action {
        self.refuse_on(decision, false)
    }

    /// [`GuardHttp::refuse`], `recorded` as for [`GuardHttp::act_on`].
    fn refuse_on(&mut self, decision: &Decision, recorded: bool) -> Action {
        self.refused = true;
        self.settle(decision, recorded);
        response::refuse(&self.host, decision, &self.request_id);
        Action::Pause
    }

    /// Queue a deny alert (enforced refusals, and dry-run ones when configured).
    fn alert(&mut self, decision: &Decision) {
        let (Some(shared), Some(record)) = (&self.shared, &self.record) else {
            return;
        };
        let Some(queue) = &shared.alerts else { return };
        let mut queue = queue.borrow_mut();
        if decision.lets_through() && !queue.include_dry_run {
            return;
        }
        if !queue.push(record.to_json_line()) {
            shared
                .metrics
                .borrow_mut()
                .record(&self.host, Stat::AlertsDropped, 1);
        }
    }

    fn refuse_now(&mut self, reason: Reason, detail: &str) -> Action {
        self.act(&Decision::deny(reason, detail))
    }

    /// Write the audit record where Envoy's access loggers read it. Called once, from
    /// `on_log`, which Envoy runs before the connection manager's access loggers (verified
    /// on 1.40: a record published there is what the access log writes).
    fn publish(&mut self, latency_ms: u64) {
        let Some(record) = &mut self.record else {
            return;
        };
        record.latency_ms(latency_ms);
        let line = record.to_json_line();
        if let Err(status) = self.host.set_property(&[AUDIT_PROPERTY], line.as_bytes()) {
            log::warn!("bedrock-guard: cannot publish the audit record: {status:?}");
        }
    }

    /// The answer came from `upstream`, outside the endpoint's ranges: the request has already
    /// left. Quarantine the endpoint (so no further request to it leaves, on any worker), and
    /// answer the client with a refusal no SDK retries (403 `AccessDeniedException`, never a
    /// 5xx, no retry hint) instead of the upstream's answer.
    fn withhold(&mut self, shared: &Shared, upstream: &[u8]) -> Action {
        shared
            .metrics
            .borrow_mut()
            .record(&self.host, Stat::UpstreamNotPrivatelink, 1);
        let key = self
            .target
            .as_ref()
            .and_then(|t| t.quarantine_key(&shared.policy));
        if let Some(key) = key {
            if quarantine::start(&self.host, key, self.host.now_ms()) == Some(true) {
                shared
                    .metrics
                    .borrow_mut()
                    .record(&self.host, Stat::DestinationQuarantined, 1);
                let from = destination::parse_upstream_address(upstream)
                    .map_or_else(|| "an unparseable address".to_string(), |a| a.to_string());
                log::warn!(
                    "bedrock-guard: endpoint {key} answered from {from}, outside its cidrs: \
                     requests to it are refused for {QUARANTINE_SECONDS} s"
                );
            }
        }
        let decision = Decision::deny(
            Reason::DestinationNotPrivatelink,
            format!(
                "the response came from an address outside the endpoint's PrivateLink ranges; \
                 requests to the endpoint are refused for {QUARANTINE_SECONDS} s"
            ),
        );
        // The record keeps the operation and models the request was let through with (and the
        // upstream's status and address); so does the tally.
        let tally = self
            .tally
            .map(|t| t.refused(Reason::DestinationNotPrivatelink));
        let action = self.refuse(&decision);
        if tally.is_some() {
            self.tally = tally;
        }
        action
    }

    /// Whether the response being sent came from the upstream (Envoy's `response.code_details`
    /// is `via_upstream`), not from Envoy itself (`upstream_reset_before_response_started{...}`,
    /// `upstream_response_timeout`, `no_healthy_upstream`, ...). Unknown details count as the
    /// upstream's, as before the property was read. One host call, made for non-2xx answers only.
    fn upstream_answered(&self) -> bool {
        self.host
            .property(&["response", "code_details"])
            .is_none_or(|details| details == b"via_upstream")
    }

    /// The request ended (`on_log`) before it finished normally: complete the record with what
    /// is known.
    ///
    /// * A body-carried request whose body never completed (the client went away, or Envoy
    ///   reset the stream) was never decided and never forwarded: it is recorded and counted as
    ///   refused, `body_unparseable`, with the status the client got (none when it got no
    ///   answer). No deny alert: a client going away is not a policy event.
    /// * A response stream cut before its end (an upstream reset, a route timeout, the client
    ///   going away) records the stream's counts so far; a frame left incomplete counts as a
    ///   stream error.
    fn ended_early(&mut self, shared: &Shared) {
        if let Some(pending) = self.pending.take() {
            let decision = Decision::deny(Reason::BodyUnparseable, INCOMPLETE_BODY_DETAIL)
                .with_operation(pending.operation);
            if let Some(record) = &mut self.record {
                record.undecided(&decision);
            }
            self.tally = Some(shared.metrics.borrow().tally(&decision, self.group));
        }
        if let Some(mut reader) = self.stream.take() {
            reader.finish();
            if let Some(record) = &mut self.record {
                record.stream(&reader);
            }
        }
    }

    /// Decide a held request on its complete body.
    fn decide_body(&mut self) -> Action {
        let (Some(shared), Some(pending)) = (self.shared.clone(), self.pending.take()) else {
            return Action::Continue;
        };
        match self
            .host
            .buffer(BufferType::HttpRequestBody, 0, self.buffered)
        {
            Ok(body) => {
                let decision = evaluate_body(&shared.policy, &pending, &body);
                self.act(&decision)
            }
            Err(err) => {
                log::warn!("bedrock-guard: request body unavailable: {err:?}");
                self.refuse_now(Reason::BodyUnparseable, "request body could not be read")
            }
        }
    }
}

impl<H: Host> Context for GuardHttp<H> {}

impl<H: Host> HttpContext for GuardHttp<H> {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.host.mark("request_headers");
        self.started_ms = self.host.now_ms();
        let headers = match self.host.header_map(MapType::HttpRequestHeaders) {
            Ok(headers) => headers,
            Err(err) => {
                log::warn!("bedrock-guard: request headers unavailable: {err:?}");
                self.request_id = response::request_id(None, self.context_id);
                return self.refuse_now(Reason::HeaderInvalid, "request headers could not be read");
            }
        };
        #[cfg(feature = "test-panic")]
        crate::test_panic::on_request_headers(&headers);
        let find = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name.as_bytes())
                .map(|(_, v)| v.as_slice())
        };
        self.request_id = response::request_id(find("x-request-id"), self.context_id);

        let Some(shared) = self.shared.clone() else {
            return self.refuse_now(
                Reason::PolicyUnavailable,
                "no valid policy bundle is loaded",
            );
        };
        let policy = &shared.policy;

        // Header names arrive validated by Envoy's codecs; one that is not UTF-8 is refused
        // rather than guessed at.
        let mut named: Vec<(&str, &[u8])> = Vec::with_capacity(headers.len());
        for (name, value) in &headers {
            match std::str::from_utf8(name) {
                Ok(name) => named.push((name, value.as_slice())),
                Err(_) => {
                    return self.refuse_now(Reason::HeaderInvalid, "header name is not valid UTF-8")
                }
            }
        }
        let authority = find(":authority").unwrap_or_default();
        self.host.mark("headers_read");
        let auth = match &shared.identity {
            None => Authentication::default(),
            Some(state) => state.borrow_mut().authenticate(
                policy.identity_header(),
                &named,
                self.started_ms / 1000,
            ),
        };
        let original_destination = if shared.original_destination {
            self.host
                .property(&["destination", "address"])
                .and_then(|a| destination::parse_upstream_address(&a))
        } else {
            None
        };
        let facts = RequestFacts {
            method: find(":method").unwrap_or_default(),
            path: find(":path").unwrap_or_default(),
            authority,
            scheme: find(":scheme").unwrap_or_default(),
            headers: &named,
            body: None,
            original_destination,
            caller: auth.caller,
            token: auth.token,
        };
        self.host.mark("authenticated");
        let evaluation = evaluate(policy, &facts);
        self.group = shared
            .metrics
            .borrow()
            .group(evaluation.principal.as_deref());
        self.host.mark("evaluated");
        let mut record = AuditRecord::from_evaluation(policy, &evaluation, self.started_ms);
        record
            .request_id(&self.request_id)
            .bundle(Arc::clone(&shared.bundle))
            .endpoint(authority);
        if let Some(source) = self.host.property(&["source", "address"]) {
            record.source_address(source);
        }
        self.record = Some(record);
        self.host.mark("recorded");
        #[cfg(feature = "bench-trace")]
        crate::trace::probe_request(&[
            ("header_map_parsed", &|| {
                let _ = std::hint::black_box(crate::host::header_map(MapType::HttpRequestHeaders));
            }),
            ("evaluate", &|| {
                let _ = std::hint::black_box(evaluate(policy, &facts));
            }),
            ("audit_record", &|| {
                let mut record = AuditRecord::from_evaluation(policy, &evaluation, self.started_ms);
                record
                    .request_id(&self.request_id)
                    .bundle(Arc::clone(&shared.bundle))
                    .endpoint(authority)
                    .source_address(b"127.0.0.1:40000");
                let _ = std::hint::black_box(record);
            }),
            ("audit_line", &|| {
                let _ = std::hint::black_box(self.record.as_ref().map(AuditRecord::to_json_line));
            }),
        ]);
        let target = evaluation.target;
        self.target = Some(target);
        let outcome = evaluation.outcome;

        // A request that would leave (or wait for its body to leave) for a quarantined
        // endpoint is refused here, before anything is sent. One shared-data read.
        let leaves = match &outcome {
            HeadOutcome::Decided(decision) => decision.lets_through(),
            HeadOutcome::NeedBody(_) => true,
        };
        if leaves {
            if let Some(key) = target.quarantine_key(policy) {
                if quarantine::check(&self.host, key, self.started_ms).is_some() {
                    let mut decision =
                        Decision::deny(Reason::DestinationNotPrivatelink, QUARANTINED_DETAIL);
                    match &outcome {
                        HeadOutcome::Decided(d) => {
                            decision.operation = d.operation;
                            decision.models.clone_from(&d.models);
                        }
                        HeadOutcome::NeedBody(p) => decision.operation = Some(p.operation),
                    }
                    return self.act(&decision);
                }
            }
        }
        self.host.mark("quarantine_checked");
        match outcome {
            HeadOutcome::Decided(decision) => {
                // The record was built from this decision: it is not applied again.
                let action = self.act_on(&decision, true);
                self.host.mark("acted");
                action
            }
            HeadOutcome::NeedBody(pending) => {
                self.pending = Some(pending);
                if end_of_stream {
                    // No body will follow: decide on the empty body now.
                    self.decide_body()
                } else if shared.hold_body == crate::config::HoldBody::BufferFilter {
                    // The buffer filter after this one holds the headers; the body phase
                    // holds the body until it is complete and decided.
                    Action::Continue
                } else {
                    // Hold the request (upstream is not contacted) until the body is complete.
                    Action::Pause
                }
            }
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(pending) = &self.pending else {
            return Action::Continue;
        };
        self.buffered = body_size;
        if u64::try_from(body_size).map_or(true, |n| n > pending.max_body_bytes) {
            return self.refuse_now(
                Reason::BodyTooLarge,
                "request body exceeds limits.max_body_bytes",
            );
        }
        if !end_of_stream {
            // StopIterationAndBuffer: Envoy keeps buffering and calls again.
            return Action::Pause;
        }
        self.decide_body()
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        // HTTP/2 requests may end with trailers instead of END_STREAM on a DATA frame.
        if self.pending.is_some() {
            return self.decide_body();
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        if self.refused {
            return Action::Continue;
        }
        let Some(shared) = self.shared.clone() else {
            return Action::Continue;
        };
        self.host.mark("response_headers");
        #[cfg(feature = "bench-trace")]
        crate::trace::probe();
        let headers = self
            .host
            .header_map(MapType::HttpResponseHeaders)
            .unwrap_or_default();
        let find = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name.as_bytes()))
                .map(|(_, v)| v.as_slice())
        };
        let status = find(":status")
            .and_then(|s| std::str::from_utf8(s).ok())
            .and_then(|s| s.parse::<u16>().ok());
        // Envoy's own answer to an upstream fault (a reset, a timeout, no healthy upstream) is
        // what the client gets, not what the upstream said: it gets no `upstreamStatus`,
        // `upstreamRequestId` or `upstreamAddress` and no upstream stat. Its status is recorded.
        let answered = status.is_none_or(|s| (200..300).contains(&s)) || self.upstream_answered();
        let throttled = status == Some(429)
            || find("x-amzn-errortype").is_some_and(|t| t.starts_with(b"ThrottlingException"));
        if let Some(s) = status.filter(|_| answered) {
            shared
                .metrics
                .borrow_mut()
                .upstream(&self.host, self.tally, s, throttled);
            self.upstream = Some((s, throttled));
        }
        if let Some(record) = self.record.as_mut().filter(|_| answered) {
            // What the upstream said, also when the client is answered otherwise below.
            if let Some(s) = status {
                record.upstream_status(s);
            }
            if let Some(id) = find("x-amzn-requestid") {
                record.upstream_request_id(id);
            }
        }
        // Checked whenever Envoy picked an upstream, also for its own answer after a reset
        // there: a request that left for an address outside the ranges quarantines the endpoint.
        if let Some(upstream) = self.host.property(&["upstream", "address"]) {
            if let Some(record) = self.record.as_mut().filter(|_| answered) {
                record.upstream_address(&upstream);
            }
            let allowed = match (&self.target, destination::parse_upstream_address(&upstream)) {
                (Some(target), Some(addr)) => target.upstream_allowed(&shared.policy, addr),
                _ => false,
            };
            if !allowed {
                return self.withhold(&shared, &upstream);
            }
        }
        if let Some(record) = &mut self.record {
            if let Some(s) = status {
                record.status(s);
            }
            if let Some((input, output)) = usage_from_headers(
                find("x-amzn-bedrock-input-token-count"),
                find("x-amzn-bedrock-output-token-count"),
            ) {
                record.tokens(input, output);
            }
        }
        let is_stream = find("content-type")
            .is_some_and(|ct| ct.starts_with(b"application/vnd.amazon.eventstream"));
        if is_stream && !end_of_stream {
            self.stream = Some(EventStreamReader::new());
        }
        // A unary JSON answer (Converse, and InvokeModel / ChatCompletions answers) carries
        // `usage` in its body: read as it passes, never held.
        let is_json = find("content-type").is_some_and(|ct| {
            ct.get(..16)
                .is_some_and(|p| p.eq_ignore_ascii_case(b"application/json"))
        });
        if is_json && !end_of_stream && status.is_some_and(|s| (200..300).contains(&s)) {
            self.unary = Some(UsageScanner::new());
        }
        self.host.mark("response_checked");
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.host.mark("response_body");
        if let Some(reader) = &mut self.stream {
            // Each callback carries only the new chunk; it passes through unchanged.
            if body_size > 0 {
                if let Ok(chunk) = self.host.buffer(BufferType::HttpResponseBody, 0, body_size) {
                    reader.push(&chunk);
                }
            }
            if self.first_frame_ms.is_none() && reader.frames() > 0 {
                // One clock read per stream.
                self.first_frame_ms = Some(self.host.now_ms().saturating_sub(self.started_ms));
            }
            if end_of_stream {
                reader.finish();
                if let Some(record) = &mut self.record {
                    record.stream(reader);
                }
                self.stream = None;
            }
        } else if let Some(scanner) = &mut self.unary {
            // One host call per chunk; the chunk passes through unchanged (never Pause).
            if body_size > 0 {
                if let Ok(chunk) = self.host.buffer(BufferType::HttpResponseBody, 0, body_size) {
                    scanner.push(&chunk);
                }
            }
            if end_of_stream {
                if let Some(usage) = scanner.usage() {
                    // InvokeModel's headers, when present, stay the record's counts.
                    if let Some(record) =
                        self.record.as_mut().filter(|r| r.token_counts().is_none())
                    {
                        record.tokens(usage.input, usage.output);
                    }
                    self.cache_tokens = (usage.cache_read, usage.cache_write);
                }
                self.unary = None;
            }
        }
        self.host.mark("response_body_read");
        Action::Continue
    }

    fn on_log(&mut self) {
        if self.logged {
            return;
        }
        self.logged = true;
        if self.record.is_none() {
            // Envoy answered this request itself before the filter saw its headers (e.g. a
            // malformed header): there is no decision to account for.
            return;
        }
        let Some(shared) = self.shared.clone() else {
            // No bundle in force: the request was refused `policy_unavailable`; it is counted
            // and recorded like any other.
            let latency = self.host.now_ms().saturating_sub(self.started_ms);
            crate::metrics::Metrics::unconfigured_refusal(&self.host);
            self.publish(latency);
            return;
        };
        self.host.mark("log");
        self.ended_early(&shared);
        let latency = self.host.now_ms().saturating_sub(self.started_ms);
        let mut metrics = shared.metrics.borrow_mut();
        if let Some(tally) = self.tally {
            metrics.decision(&self.host, tally);
        }
        metrics.record(&self.host, Stat::LatencyMs, latency);
        // AWS/Bedrock's per-model figures the existing families do not give (docs/operations.md,
        // "CloudWatch names"): latency of invocations the upstream answered (not throttles, as
        // AWS's InvocationLatency), time to a stream's first event, prompt-cache tokens.
        if matches!(self.upstream, Some((_, false))) && !self.refused {
            metrics.invocation_latency(&self.host, self.tally, latency);
        }
        if let Some(ms) = self.first_frame_ms {
            metrics.time_to_first_token(&self.host, self.tally, ms);
        }
        let (read, write) = self.cache_tokens;
        if read.is_some() || write.is_some() {
            metrics.cache_tokens(&self.host, self.tally, read, write);
        }
        if let Some(record) = &self.record {
            if let Some((input, output)) = record.token_counts() {
                metrics.tokens(&self.host, self.tally, input, output);
            }
            if let Some(n) = record.malformed_frames().filter(|n| *n > 0) {
                metrics.record(&self.host, Stat::StreamMalformedFrames, n);
            }
        }
        if let Some(ns) = &shared.emf_namespace {
            // Opt-in: one more set_property per request.
            let refused = self
                .tally
                .filter(|t| t.verdict() == crate::metrics::Verdict::Deny)
                .map(|t| t.reason().as_str());
            let figures = crate::emf::Figures {
                model_id: metrics.model_id(self.tally),
                upstream: self.upstream.filter(|_| !self.refused),
                latency_ms: latency,
                tokens: self.record.as_ref().and_then(|r| r.token_counts()),
                cache: self.cache_tokens,
                first_token_ms: self.first_frame_ms,
                refused,
            };
            let line = crate::emf::line(ns, self.started_ms, &figures);
            if let Err(status) = self.host.set_property(&[EMF_PROPERTY], line.as_bytes()) {
                log::warn!("bedrock-guard: cannot publish the EMF line: {status:?}");
            }
        }
        drop(metrics);
        self.host.mark("counted");
        self.publish(latency);
        self.host.mark("end");
    }
}

#[cfg(test)]
#[path = "filter_tests.rs"]
mod tests;
