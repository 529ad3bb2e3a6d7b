//! The HTTP context: one per request.

use std::rc::Rc;

use policies::{
    evaluate_body, evaluate_head, CompiledPolicy, Decision, HeadOutcome, Pending, Reason,
    RequestFacts,
};
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use crate::{host, response};

pub struct GuardHttp {
    context_id: u32,
    policy: Option<Rc<CompiledPolicy>>,
    /// Set while a body-carried decision waits for the whole body.
    pending: Option<Pending>,
    /// Bytes of request body buffered so far (reported by the host).
    buffered: usize,
    request_id: String,
}

impl GuardHttp {
    pub fn new(context_id: u32, policy: Option<Rc<CompiledPolicy>>) -> Self {
        GuardHttp {
            context_id,
            policy,
            pending: None,
            buffered: 0,
            request_id: String::new(),
        }
    }

    /// Carry out a decision: continue untouched, or answer with the refusal.
    fn act(&mut self, decision: &Decision) -> Action {
        self.pending = None;
        if decision.lets_through() {
            if !decision.is_allow() {
                log::info!(
                    "bedrock-guard: dry-run would deny: reason={} rule={}",
                    decision.reason,
                    decision.rule_id.as_deref().unwrap_or("-")
                );
            }
            return Action::Continue;
        }
        response::refuse(decision, &self.request_id);
        Action::Pause
    }

    fn refuse_now(&mut self, reason: Reason, detail: &str) -> Action {
        self.act(&Decision::deny(reason, detail))
    }

    /// Decide a held request on its complete body.
    fn decide_body(&mut self) -> Action {
        let (Some(policy), Some(pending)) = (self.policy.clone(), self.pending.take()) else {
            return Action::Continue;
        };
        match host::request_body(self.buffered) {
            Ok(body) => {
                let decision = evaluate_body(&policy, &pending, &body);
                self.act(&decision)
            }
            Err(err) => {
                log::warn!("bedrock-guard: request body unavailable: {err:?}");
                self.refuse_now(Reason::BodyUnparseable, "request body could not be read")
            }
        }
    }
}

impl Context for GuardHttp {}

impl HttpContext for GuardHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let headers = match host::request_headers() {
            Ok(headers) => headers,
            Err(err) => {
                log::warn!("bedrock-guard: request headers unavailable: {err:?}");
                self.request_id = response::request_id(None, self.context_id);
                return self.refuse_now(Reason::HeaderInvalid, "request headers could not be read");
            }
        };
        let find = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name.as_bytes())
                .map(|(_, v)| v.as_slice())
        };
        self.request_id = response::request_id(find("x-request-id"), self.context_id);

        let Some(policy) = self.policy.clone() else {
            return self.refuse_now(
                Reason::PolicyUnavailable,
                "no valid policy bundle is loaded",
            );
        };

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
        let facts = RequestFacts {
            method: find(":method").unwrap_or_default(),
            path: find(":path").unwrap_or_default(),
            authority: find(":authority").unwrap_or_default(),
            scheme: find(":scheme").unwrap_or_default(),
            headers: &named,
            body: None,
            ..Default::default()
        };
        match evaluate_head(&policy, &facts) {
            HeadOutcome::Decided(decision) => self.act(&decision),
            HeadOutcome::NeedBody(pending) => {
                self.pending = Some(pending);
                if end_of_stream {
                    // No body will follow: decide on the empty body now.
                    self.decide_body()
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
}
