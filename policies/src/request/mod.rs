//! Request facts and their interpretation: the route catalogue, model-id canonicalisation,
//! ARN parsing and strict JSON extraction of body-carried models.
//!
//! Nothing here knows about Envoy: the plugin hands in raw bytes exactly as received.

pub mod body;
mod headers;
mod model;
pub(crate) mod resource;
pub mod route;

pub(crate) use body::extract_body_values;
pub use body::{extract_body_models, BodyError};
pub use headers::{check_head, json_content_type, ContentTypeError, HeadInfo, HeaderError};
pub use model::{parse_body_model_id, parse_path_model_id, Arn, ModelError, ModelRef};
pub use route::{
    classify, ModelLocation, Operation, PathResource, ResourceKind, RouteError, RouteMatch,
};

/// Everything the engine decides on, as raw bytes straight from the proxy.
#[derive(Debug, Clone, Default)]
pub struct RequestFacts<'a> {
    /// `:method` exactly as received.
    pub method: &'a [u8],
    /// `:path` exactly as received (query included), before any normalisation.
    pub path: &'a [u8],
    /// `:authority`.
    pub authority: &'a [u8],
    /// `:scheme`.
    pub scheme: &'a [u8],
    /// The full header map, every pair, names lower-cased by the proxy. Pseudo-headers may be
    /// included; repeated names appear repeatedly.
    pub headers: &'a [(&'a str, &'a [u8])],
    /// The complete request body for operations that carry the model in it.
    pub body: Option<&'a [u8]>,
    /// The address the client dialled, when Envoy knows it (transparent interception). `None`
    /// when the client addressed the proxy itself (explicit `HTTP_PROXY`).
    pub original_destination: Option<std::net::IpAddr>,
    /// The outcome of authenticating the request's identity token (see
    /// `identity::authenticate`); `Anonymous` when the shell did not authenticate.
    pub caller: crate::identity::Caller,
    /// SHA-256 of the request's identity token, when it carries one (see
    /// `identity::Authentication`); recorded, never decided on.
    pub token: Option<crate::identity::TokenHash>,
}
