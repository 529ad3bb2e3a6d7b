//! The one place that talks to Envoy's proxy-wasm ABI directly, and the [`Host`] trait the
//! rest of the shell uses instead.
//!
//! The SDK's header accessors decode names and values with `String::from_utf8(..).unwrap()`
//! and panic on unexpected host statuses; a panic aborts the VM. These adapters return
//! `Result`s and hand back raw bytes, so no request content can crash the filter.
//!
//! Everything the filter, the stats and the quarantine need from Envoy goes through [`Host`]:
//! [`Envoy`] is the real one (a zero-sized type, so the generic code compiles to direct host
//! calls), and the unit tests drive the filter with a recording fake, without Envoy.

use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType, MetricType, Status};

/// What the shell needs from its host, one method per kind of host call.
pub trait Host {
    /// Milliseconds since the Unix epoch, from the host clock.
    fn now_ms(&self) -> u64;
    /// Every pair of a header map (request, response, or an HTTP call's response).
    fn header_map(&self, map: MapType) -> Result<HeaderPairs, HostError>;
    /// Remove a request header.
    fn remove_request_header(&self, name: &str) -> Result<(), HostError>;
    /// `len` bytes of a buffer from `start` (empty when there is none).
    fn buffer(&self, kind: BufferType, start: usize, len: usize) -> Result<Vec<u8>, HostError>;
    /// A property (`["upstream", "address"]`, ...); `None` when absent or unreadable.
    fn property(&self, path: &[&str]) -> Option<Vec<u8>>;
    /// Set a filter-state property.
    fn set_property(&self, path: &[&str], value: &[u8]) -> Result<(), HostError>;
    /// Answer the current request locally.
    fn send_local_response(
        &self,
        status: u32,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(), HostError>;
    /// A shared-data value and its compare-and-swap token (see [`shared_data`]).
    fn shared_data(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), HostError>;
    /// Store a shared-data value (see [`set_shared_data`]).
    fn set_shared_data(&self, key: &str, value: &[u8], cas: u32) -> Result<(), HostError>;
    /// Define (or find) a stat.
    fn define_metric(&self, kind: MetricType, name: &str) -> Result<u32, HostError>;
    /// Add to a counter.
    fn increment_metric(&self, id: u32, delta: i64) -> Result<(), HostError>;
    /// Set a gauge or record a histogram sample.
    fn record_metric(&self, id: u32, value: u64) -> Result<(), HostError>;
    /// A stat's current value (stats are the process's: every VM and `vm_id` sees them).
    fn metric(&self, id: u32) -> Result<u64, HostError>;
    /// A point in the request's life reached (`bench-trace` builds time and count them; a
    /// no-op otherwise, compiled away).
    fn mark(&self, _point: &'static str) {}
    /// Start an HTTP call to `cluster`; its token.
    fn dispatch_http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<u32, HostError>;
}

/// The real host: Envoy, through the proxy-wasm ABI.
#[derive(Debug, Clone, Copy, Default)]
pub struct Envoy;

impl Host for Envoy {
    fn now_ms(&self) -> u64 {
        hostcalls::get_current_time()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    fn header_map(&self, map: MapType) -> Result<HeaderPairs, HostError> {
        header_map(map)
    }

    fn remove_request_header(&self, name: &str) -> Result<(), HostError> {
        hostcalls::set_map_value(MapType::HttpRequestHeaders, name, None).map_err(HostError::Status)
    }

    fn buffer(&self, kind: BufferType, start: usize, len: usize) -> Result<Vec<u8>, HostError> {
        hostcalls::get_buffer(kind, start, len)
            .map(Option::unwrap_or_default)
            .map_err(HostError::Status)
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        hostcalls::get_property(path.to_vec()).ok().flatten()
    }

    fn set_property(&self, path: &[&str], value: &[u8]) -> Result<(), HostError> {
        hostcalls::set_property(path.to_vec(), Some(value)).map_err(HostError::Status)
    }

    fn send_local_response(
        &self,
        status: u32,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(), HostError> {
        hostcalls::send_http_response(status, headers.to_vec(), Some(body))
            .map_err(HostError::Status)
    }

    fn shared_data(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), HostError> {
        shared_data(key)
    }

    fn set_shared_data(&self, key: &str, value: &[u8], cas: u32) -> Result<(), HostError> {
        set_shared_data(key, value, cas)
    }

    fn define_metric(&self, kind: MetricType, name: &str) -> Result<u32, HostError> {
        hostcalls::define_metric(kind, name).map_err(HostError::Status)
    }

    fn increment_metric(&self, id: u32, delta: i64) -> Result<(), HostError> {
        hostcalls::increment_metric(id, delta).map_err(HostError::Status)
    }

    fn record_metric(&self, id: u32, value: u64) -> Result<(), HostError> {
        hostcalls::record_metric(id, value).map_err(HostError::Status)
    }

    fn metric(&self, id: u32) -> Result<u64, HostError> {
        hostcalls::get_metric(id).map_err(HostError::Status)
    }

    fn dispatch_http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<u32, HostError> {
        hostcalls::dispatch_http_call(cluster, headers.to_vec(), body, Vec::new(), timeout)
            .map_err(HostError::Status)
    }
}

/// A shared host (the unit tests keep a handle on their fake to inspect it).
impl<T: Host + ?Sized> Host for Rc<T> {
    fn now_ms(&self) -> u64 {
        (**self).now_ms()
    }
    fn header_map(&self, map: MapType) -> Result<HeaderPairs, HostError> {
        (**self).header_map(map)
    }
    fn remove_request_header(&self, name: &str) -> Result<(), HostError> {
        (**self).remove_request_header(name)
    }
    fn buffer(&self, kind: BufferType, start: usize, len: usize) -> Result<Vec<u8>, HostError> {
        (**self).buffer(kind, start, len)
    }
    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        (**self).property(path)
    }
    fn set_property(&self, path: &[&str], value: &[u8]) -> Result<(), HostError> {
        (**self).set_property(path, value)
    }
    fn send_local_response(
        &self,
        status: u32,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(), HostError> {
        (**self).send_local_response(status, headers, body)
    }
    fn shared_data(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), HostError> {
        (**self).shared_data(key)
    }
    fn set_shared_data(&self, key: &str, value: &[u8], cas: u32) -> Result<(), HostError> {
        (**self).set_shared_data(key, value, cas)
    }
    fn define_metric(&self, kind: MetricType, name: &str) -> Result<u32, HostError> {
        (**self).define_metric(kind, name)
    }
    fn increment_metric(&self, id: u32, delta: i64) -> Result<(), HostError> {
        (**self).increment_metric(id, delta)
    }
    fn record_metric(&self, id: u32, value: u64) -> Result<(), HostError> {
        (**self).record_metric(id, value)
    }
    fn metric(&self, id: u32) -> Result<u64, HostError> {
        (**self).metric(id)
    }
    fn mark(&self, point: &'static str) {
        (**self).mark(point)
    }
    fn dispatch_http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<u32, HostError> {
        (**self).dispatch_http_call(cluster, headers, body, timeout)
    }
}

#[link(wasm_import_module = "env")]
extern "C" {
    // Same signature as the SDK's own import, so the two declarations agree.
    fn proxy_get_header_map_pairs(
        map_type: MapType,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> Status;
    // Same signatures as the SDK's imports; its wrappers panic on unexpected host statuses.
    fn proxy_get_shared_data(
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
        return_cas: *mut u32,
    ) -> Status;
    fn proxy_set_shared_data(
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
        cas: u32,
    ) -> Status;
}

/// Every (name, value) pair of a header map, in order, repeated names included.
pub type HeaderPairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Why a host call could not be completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostError {
    Status(Status),
    Malformed,
}

pub fn header_map(map_type: MapType) -> Result<HeaderPairs, HostError> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: the host writes a pointer to a buffer it allocated through the module's
    // `proxy_on_memory_allocate` export (the SDK's allocator, which allocates `size` bytes
    // as a Vec<u8>), and its length. We take ownership of exactly that allocation once.
    let status = unsafe { proxy_get_header_map_pairs(map_type, &mut data, &mut size) };
    match status {
        Status::Ok => {
            if data.is_null() {
                return Ok(Vec::new());
            }
            // SAFETY: see above; capacity equals the allocated size.
            let bytes = unsafe { Vec::from_raw_parts(data, size, size) };
            parse_map(&bytes).ok_or(HostError::Malformed)
        }
        other => Err(HostError::Status(other)),
    }
}

/// Decode the proxy-wasm map serialisation: a u32 count, then per pair (u32 name length,
/// u32 value length), then the names and values each followed by a NUL byte. Every bound is
/// checked; a malformed buffer is `None`, never a panic.
pub fn parse_map(bytes: &[u8]) -> Option<HeaderPairs> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let read_u32 = |at: usize| -> Option<usize> {
        let raw: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        usize::try_from(u32::from_le_bytes(raw)).ok()
    };
    let count = read_u32(0)?;
    let mut data_at = count.checked_mul(8)?.checked_add(4)?;
    if data_at > bytes.len() {
        return None;
    }
    let mut pairs = Vec::with_capacity(count);
    for n in 0..count {
        let sizes_at = 4 + n * 8;
        let name_len = read_u32(sizes_at)?;
        let value_len = read_u32(sizes_at + 4)?;
        let name_end = data_at.checked_add(name_len)?;
        let name = bytes.get(data_at..name_end)?.to_vec();
        if *bytes.get(name_end)? != 0 {
            return None;
        }
        data_at = name_end + 1;
        let value_end = data_at.checked_add(value_len)?;
        let value = bytes.get(data_at..value_end)?.to_vec();
        if *bytes.get(value_end)? != 0 {
            return None;
        }
        data_at = value_end + 1;
        pairs.push((name, value));
    }
    Some(pairs)
}

/// The VM configuration (operator settings such as pinned bundle keys).
pub fn vm_configuration() -> Result<Vec<u8>, HostError> {
    match hostcalls::get_buffer(BufferType::VmConfiguration, 0, usize::MAX) {
        Ok(bytes) => Ok(bytes.unwrap_or_default()),
        Err(status) => Err(HostError::Status(status)),
    }
}

/// The plugin configuration (the policy bundle).
pub fn plugin_configuration() -> Result<Vec<u8>, HostError> {
    match hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX) {
        Ok(bytes) => Ok(bytes.unwrap_or_default()),
        Err(status) => Err(HostError::Status(status)),
    }
}

/// A shared-data value (shared by every VM of the same `vm_id`) and its compare-and-swap
/// token. A missing key is `(None, 0)`; so is an empty value (the host hands back no bytes,
/// and nothing is allocated).
pub fn shared_data(key: &str) -> Result<(Option<Vec<u8>>, u32), HostError> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    let mut cas: u32 = 0;
    // SAFETY: as for `header_map`: on success the host writes a pointer to a buffer it
    // allocated through the module's `proxy_on_memory_allocate` (or null), its length, and the
    // cas; we take ownership of exactly that allocation once.
    let status =
        unsafe { proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas) };
    match status {
        Status::Ok => {
            if data.is_null() {
                return Ok((None, cas));
            }
            // SAFETY: see above; capacity equals the allocated size.
            let bytes = unsafe { Vec::from_raw_parts(data, size, size) };
            Ok((if bytes.is_empty() { None } else { Some(bytes) }, cas))
        }
        Status::NotFound => Ok((None, 0)),
        other => Err(HostError::Status(other)),
    }
}

/// Store a shared-data value. With `cas` non-zero the write happens only if the value is still
/// the one read with that token (`Err(Status(CasMismatch))` otherwise); `cas` 0 writes
/// unconditionally.
pub fn set_shared_data(key: &str, value: &[u8], cas: u32) -> Result<(), HostError> {
    // SAFETY: both pointers and lengths describe live slices for the duration of the call; the
    // host copies them.
    let status =
        unsafe { proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas) };
    match status {
        Status::Ok => Ok(()),
        other => Err(HostError::Status(other)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::parse_map;

    fn serialise(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut out = (pairs.len() as u32).to_le_bytes().to_vec();
        for (k, v) in pairs {
            out.extend((k.len() as u32).to_le_bytes());
            out.extend((v.len() as u32).to_le_bytes());
        }
        for (k, v) in pairs {
            out.extend(*k);
            out.push(0);
            out.extend(*v);
            out.push(0);
        }
        out
    }

    #[test]
    fn parses_non_utf8_values_and_repeated_names() {
        let raw = serialise(&[
            (b":path", b"/x"),
            (b"user-agent", b"\xC0\xA7"),
            (b"user-agent", b"b"),
        ]);
        let pairs = parse_map(&raw).unwrap();
        assert_eq!(pairs.len(), 3);
        assert_eq!(pairs[1].1, b"\xC0\xA7".to_vec());
        assert_eq!(pairs[2].0, b"user-agent".to_vec());
    }

    #[test]
    fn refuses_truncated_or_lying_buffers() {
        let raw = serialise(&[(b"a", b"b")]);
        for cut in 1..raw.len() {
            assert!(parse_map(&raw[..cut]).is_none(), "cut at {cut}");
        }
        let mut huge = raw.clone();
        huge[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse_map(&huge).is_none());
    }

    #[test]
    fn empty_buffer_is_an_empty_map() {
        assert_eq!(parse_map(&[]).unwrap(), Vec::new());
    }
}
