//! A recording [`Host`] for unit tests: canned headers, bodies and properties in, and every
//! local response, property write, header removal, shared-data value and stat out. Failures
//! of single host calls can be switched on to test the shell's error paths without Envoy.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::Duration;

use proxy_wasm::types::{BufferType, MapType, MetricType, Status};

use crate::host::{HeaderPairs, Host, HostError};

/// A local response the filter sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub status: u32,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Sent {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
pub struct FakeHost {
    pub now_ms: Cell<u64>,
    pub request_headers: RefCell<Option<HeaderPairs>>,
    pub response_headers: RefCell<HeaderPairs>,
    pub request_body: RefCell<Vec<u8>>,
    pub response_body: RefCell<Vec<u8>>,
    /// Properties the host answers, keyed by the path joined with `.`.
    pub properties: RefCell<HashMap<String, Vec<u8>>>,
    /// Properties the filter set, keyed the same way.
    pub written: RefCell<HashMap<String, Vec<u8>>>,
    pub removed_headers: RefCell<Vec<String>>,
    pub sent: RefCell<Vec<Sent>>,
    pub shared: RefCell<HashMap<String, (Vec<u8>, u32)>>,
    /// Stats by name: kind and value (counters summed, gauges and histograms last value).
    pub stats: RefCell<Vec<(String, MetricType, i64)>>,
    pub calls: RefCell<Vec<String>>,
    pub fail_header_removal: Cell<bool>,
    pub fail_set_property: Cell<bool>,
    pub fail_request_body: Cell<bool>,
    pub fail_shared_data: Cell<bool>,
}

impl FakeHost {
    pub fn new() -> FakeHost {
        let host = FakeHost::default();
        host.now_ms.set(1_760_000_000_000);
        host
    }

    pub fn request(&self, pairs: &[(&str, &str)]) {
        *self.request_headers.borrow_mut() = Some(
            pairs
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect(),
        );
    }

    pub fn response(&self, pairs: &[(&str, &str)]) {
        *self.response_headers.borrow_mut() = pairs
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect();
    }

    pub fn property_is(&self, path: &str, value: &str) {
        self.properties
            .borrow_mut()
            .insert(path.to_string(), value.as_bytes().to_vec());
    }

    /// A stat's value (0 when never defined).
    pub fn stat(&self, name: &str) -> i64 {
        self.stats
            .borrow()
            .iter()
            .find(|(n, _, _)| n == name)
            .map_or(0, |(_, _, v)| *v)
    }

    /// The audit record published in the filter state, parsed.
    pub fn audit(&self) -> Option<serde_json::Value> {
        let written = self.written.borrow();
        let line = written.get(crate::filter::AUDIT_PROPERTY)?;
        serde_json::from_slice(line).ok()
    }
}

impl Host for FakeHost {
    fn now_ms(&self) -> u64 {
        self.now_ms.get()
    }

    fn header_map(&self, map: MapType) -> Result<HeaderPairs, HostError> {
        match map {
            MapType::HttpRequestHeaders => self
                .request_headers
                .borrow()
                .clone()
                .ok_or(HostError::Status(Status::InternalFailure)),
            MapType::HttpResponseHeaders => Ok(self.response_headers.borrow().clone()),
            _ => Ok(Vec::new()),
        }
    }

    fn remove_request_header(&self, name: &str) -> Result<(), HostError> {
        self.calls.borrow_mut().push(format!("remove {name}"));
        if self.fail_header_removal.get() {
            return Err(HostError::Status(Status::InternalFailure));
        }
        self.removed_headers.borrow_mut().push(name.to_string());
        Ok(())
    }

    fn buffer(&self, kind: BufferType, start: usize, len: usize) -> Result<Vec<u8>, HostError> {
        let source = match kind {
            BufferType::HttpRequestBody if self.fail_request_body.get() => {
                return Err(HostError::Status(Status::InternalFailure))
            }
            BufferType::HttpRequestBody => self.request_body.borrow().clone(),
            BufferType::HttpResponseBody => self.response_body.borrow().clone(),
            _ => Vec::new(),
        };
        let end = start.saturating_add(len).min(source.len());
        Ok(source.get(start.min(end)..end).unwrap_or_default().to_vec())
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        self.properties.borrow().get(&path.join(".")).cloned()
    }

    fn set_property(&self, path: &[&str], value: &[u8]) -> Result<(), HostError> {
        if self.fail_set_property.get() {
            return Err(HostError::Status(Status::InternalFailure));
        }
        self.written
            .borrow_mut()
            .insert(path.join("."), value.to_vec());
        Ok(())
    }

    fn send_local_response(
        &self,
        status: u32,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(), HostError> {
        self.sent.borrow_mut().push(Sent {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: String::from_utf8_lossy(body).into_owned(),
        });
        Ok(())
    }

    fn shared_data(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), HostError> {
        if self.fail_shared_data.get() {
            return Err(HostError::Status(Status::InternalFailure));
        }
        Ok(match self.shared.borrow().get(key) {
            Some((value, cas)) => (Some(value.clone()), *cas),
            None => (None, 0),
        })
    }

    fn set_shared_data(&self, key: &str, value: &[u8], cas: u32) -> Result<(), HostError> {
        let mut shared = self.shared.borrow_mut();
        let current = shared.get(key).map_or(0, |(_, c)| *c);
        if cas != 0 && cas != current {
            return Err(HostError::Status(Status::CasMismatch));
        }
        shared.insert(key.to_string(), (value.to_vec(), current + 1));
        Ok(())
    }

    fn define_metric(&self, kind: MetricType, name: &str) -> Result<u32, HostError> {
        let mut stats = self.stats.borrow_mut();
        if let Some(i) = stats.iter().position(|(n, _, _)| n == name) {
            return Ok(i as u32);
        }
        stats.push((name.to_string(), kind, 0));
        Ok(stats.len() as u32 - 1)
    }

    fn increment_metric(&self, id: u32, delta: i64) -> Result<(), HostError> {
        let mut stats = self.stats.borrow_mut();
        let stat = stats
            .get_mut(id as usize)
            .ok_or(HostError::Status(Status::NotFound))?;
        stat.2 += delta;
        Ok(())
    }

    fn record_metric(&self, id: u32, value: u64) -> Result<(), HostError> {
        let mut stats = self.stats.borrow_mut();
        let stat = stats
            .get_mut(id as usize)
            .ok_or(HostError::Status(Status::NotFound))?;
        stat.2 = value as i64;
        Ok(())
    }

    fn metric(&self, id: u32) -> Result<u64, HostError> {
        let stats = self.stats.borrow();
        let stat = stats
            .get(id as usize)
            .ok_or(HostError::Status(Status::NotFound))?;
        Ok(stat.2 as u64)
    }

    fn dispatch_http_call(
        &self,
        cluster: &str,
        _headers: &[(&str, &str)],
        _body: Option<&[u8]>,
        _timeout: Duration,
    ) -> Result<u32, HostError> {
        self.calls.borrow_mut().push(format!("dispatch {cluster}"));
        Ok(1)
    }
}
