//! `bench-trace` builds only (cargo feature `bench-trace`, never in the released module): a
//! [`Host`] that counts the host calls of each request by kind and times the points the filter
//! marks, and logs them as one line per request when the request ends:
//!
//! ```text
//! bedrock-guard trace: {"calls":{"header_map":2,...},"points_ns":{"headers":0,"evaluated":5210,...}}
//! ```
//!
//! `make bench` collects these lines for the cost breakdown. Each timestamp is itself a host
//! call (`clock` in `calls`), so the times include that overhead; the clock's own cost is in
//! the line as `clock_ns` (two reads back to back).
//!
//! Once per VM, at its 20th answer, [`probe`] also times each kind of host call the guard
//! makes per request, warm (200 calls back to back, the mean), and [`probe_request`] the
//! guard's own computations (the engine's decision, the audit record, its JSON line), and each
//! logs one `bedrock-guard probe:` line: what they cost apart from the cold caches a request
//! meets (the trace's points include those).

use std::cell::{Cell, RefCell};
use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType, MetricType};

use crate::host::{Envoy, HeaderPairs, Host, HostError};

const KINDS: [&str; 13] = [
    "now",
    "header_map",
    "remove_request_header",
    "buffer",
    "property",
    "set_property",
    "send_local_response",
    "shared_data",
    "set_shared_data",
    "define_metric",
    "increment_metric",
    "record_metric",
    "dispatch_http_call",
];

/// Envoy, with every call counted and the marked points timed.
#[derive(Default)]
pub struct Traced {
    calls: [Cell<u32>; KINDS.len()],
    points: RefCell<Vec<(&'static str, u64)>>,
}

fn clock_ns() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl Traced {
    fn count(&self, kind: usize) {
        if let Some(c) = self.calls.get(kind) {
            c.set(c.get().saturating_add(1));
        }
    }

    /// The request ended: log its line and start over.
    fn flush(&self) {
        let mut points = self.points.borrow_mut();
        let start = points.first().map_or(0, |(_, t)| *t);
        let calls: Vec<String> = KINDS
            .iter()
            .zip(self.calls.iter())
            .filter(|(_, c)| c.get() > 0)
            .map(|(k, c)| format!("\"{k}\":{}", c.get()))
            .collect();
        let timed: Vec<String> = points
            .iter()
            .map(|(p, t)| format!("\"{p}\":{}", t.saturating_sub(start)))
            .collect();
        let a = clock_ns();
        let b = clock_ns();
        log::info!(
            "bedrock-guard trace: {{\"calls\":{{{}}},\"points_ns\":{{{}}},\"clock_ns\":{}}}",
            calls.join(","),
            timed.join(","),
            b.saturating_sub(a)
        );
        points.clear();
        for c in &self.calls {
            c.set(0);
        }
    }
}

impl Host for Traced {
    fn now_ms(&self) -> u64 {
        self.count(0);
        Envoy.now_ms()
    }
    fn header_map(&self, map: MapType) -> Result<HeaderPairs, HostError> {
        self.count(1);
        Envoy.header_map(map)
    }
    fn remove_request_header(&self, name: &str) -> Result<(), HostError> {
        self.count(2);
        Envoy.remove_request_header(name)
    }
    fn buffer(&self, kind: BufferType, start: usize, len: usize) -> Result<Vec<u8>, HostError> {
        self.count(3);
        Envoy.buffer(kind, start, len)
    }
    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        self.count(4);
        Envoy.property(path)
    }
    fn set_property(&self, path: &[&str], value: &[u8]) -> Result<(), HostError> {
        self.count(5);
        Envoy.set_property(path, value)
    }
    fn send_local_response(
        &self,
        status: u32,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(), HostError> {
        self.count(6);
        Envoy.send_local_response(status, headers, body)
    }
    fn shared_data(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), HostError> {
        self.count(7);
        Envoy.shared_data(key)
    }
    fn set_shared_data(&self, key: &str, value: &[u8], cas: u32) -> Result<(), HostError> {
        self.count(8);
        Envoy.set_shared_data(key, value, cas)
    }
    fn define_metric(&self, kind: MetricType, name: &str) -> Result<u32, HostError> {
        self.count(9);
        Envoy.define_metric(kind, name)
    }
    fn increment_metric(&self, id: u32, delta: i64) -> Result<(), HostError> {
        self.count(10);
        Envoy.increment_metric(id, delta)
    }
    fn record_metric(&self, id: u32, value: u64) -> Result<(), HostError> {
        self.count(11);
        Envoy.record_metric(id, value)
    }
    fn metric(&self, id: u32) -> Result<u64, HostError> {
        Envoy.metric(id) // root context only, never per request
    }
    fn mark(&self, point: &'static str) {
        self.points.borrow_mut().push((point, clock_ns()));
        if point == "end" {
            self.flush();
        }
    }
    fn dispatch_http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<u32, HostError> {
        self.count(12);
        Envoy.dispatch_http_call(cluster, headers, body, timeout)
    }
}

/// Mean nanoseconds of `f` over 200 calls back to back.
fn mean_ns(f: &dyn Fn()) -> u64 {
    const N: u64 = 200;
    let start = clock_ns();
    for _ in 0..N {
        f();
    }
    clock_ns().saturating_sub(start) / N
}

/// The probes run at a VM's 20th request (of the trace's 50), once V8 has compiled the hot
/// code with its optimising tier, as it has under load.
const PROBE_AT: u32 = 20;

thread_local! {
    static PROBED: Cell<u32> = const { Cell::new(0) };
    static PROBED_REQUEST: Cell<u32> = const { Cell::new(0) };
}

/// Whether this call (counted in `calls`) is the one to probe at.
fn probe_now(calls: &'static std::thread::LocalKey<Cell<u32>>) -> bool {
    calls.with(|c| {
        let n = c.get().saturating_add(1);
        c.set(n);
        n == PROBE_AT
    })
}

/// Time the guard's own per-request computations warm, once per VM, at its 20th request (the
/// filter passes them in from its request headers callback), as a `bedrock-guard probe:` line.
pub fn probe_request(parts: &[(&str, &dyn Fn())]) {
    if !probe_now(&PROBED_REQUEST) {
        return;
    }
    let timed: Vec<String> = parts
        .iter()
        .map(|(name, f)| format!("\"{name}_ns\":{}", mean_ns(*f)))
        .collect();
    log::info!("bedrock-guard probe: {{{}}}", timed.join(","));
}

/// Time each kind of host call once per VM, at its 20th answer, from the response
/// headers callback, where every header map and property the guard reads exists.
pub fn probe() {
    if !probe_now(&PROBED) {
        return;
    }
    let response = MapType::HttpResponseHeaders;
    let header_map = mean_ns(&|| {
        let _ = crate::host::header_map(response);
    });
    // What reading the response headers the guard needs one by one would cost instead.
    let six_gets = mean_ns(&|| {
        for name in [
            ":status",
            "x-amzn-errortype",
            "x-amzn-requestid",
            "x-amzn-bedrock-input-token-count",
            "x-amzn-bedrock-output-token-count",
            "content-type",
        ] {
            let _ = hostcalls::get_map_value_bytes(response, name);
        }
    });
    let property = mean_ns(&|| {
        let _ = Envoy.property(&["upstream", "address"]);
    });
    let now = mean_ns(&|| {
        let _ = Envoy.now_ms();
    });
    let shared_data = mean_ns(&|| {
        let _ = crate::host::shared_data("bedrock_guard.probe.absent");
    });
    let set_property = mean_ns(&|| {
        let _ = Envoy.set_property(&["bedrock_guard_probe"], &[b'x'; 700]);
    });
    let counter = Envoy.define_metric(MetricType::Counter, "bedrock_guard.probe_counter");
    let histogram = Envoy.define_metric(MetricType::Histogram, "bedrock_guard.probe_histogram");
    let (increment, record) = match (counter, histogram) {
        (Ok(c), Ok(h)) => (
            mean_ns(&|| {
                let _ = Envoy.increment_metric(c, 1);
            }),
            mean_ns(&|| {
                let _ = Envoy.record_metric(h, 1);
            }),
        ),
        _ => (0, 0),
    };
    let headers = crate::host::header_map(response).map_or(0, |m| m.len());
    log::info!(
        "bedrock-guard probe: {{\"response_headers\":{headers},\"header_map_ns\":{header_map},\
         \"six_header_gets_ns\":{six_gets},\"property_ns\":{property},\"now_ns\":{now},\
         \"shared_data_ns\":{shared_data},\"set_property_700_bytes_ns\":{set_property},\
         \"increment_metric_ns\":{increment},\"record_metric_ns\":{record}}}"
    );
}
