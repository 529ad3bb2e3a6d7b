//! The operation catalogue: which Bedrock operation a (method, raw path) pair is, and where
//! its model identifier lives.
//!
//! Routing works on the raw `:path` bytes exactly as received, the way AWS's restJson1 router
//! does: split on `/` first, match literal segments byte for byte (never percent-decoded,
//! case-sensitive), and leave labels encoded. Anything ambiguous is refused before routing:
//! bytes outside printable ASCII, `#`, `\`, `;`, malformed or control-character escapes, empty,
//! dot (also `%2E`-encoded) and trailing segments.

use crate::aws::is_partition;
use crate::decision::Reason;
use crate::request::model::{hex_value, is_account, is_arn_region, percent_decode_once};

/// A recognised Bedrock operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    // bedrock-runtime, model in the path
    /// `POST /model/{modelId}/invoke`.
    InvokeModel,
    /// `POST /model/{modelId}/invoke-with-response-stream`.
    InvokeModelWithResponseStream,
    /// `POST /model/{modelId}/converse`.
    Converse,
    /// `POST /model/{modelId}/converse-stream`.
    ConverseStream,
    /// `POST /model/{modelId}/count-tokens`.
    CountTokens,
    /// `POST /model/{modelId}/invoke-with-bidirectional-stream`.
    InvokeModelWithBidirectionalStream,
    // bedrock-runtime, model in the body
    /// `POST /async-invoke`, model in the body's `modelId`.
    StartAsyncInvoke,
    /// `POST /openai/v1/chat/completions`, model in the body's `model`.
    ChatCompletions,
    /// `POST /openai/v1/responses`, model in the body's `model`.
    Responses,
    /// `POST /anthropic/v1/messages`, model in the body's `model`.
    AnthropicMessages,
    // bedrock-runtime, no model
    /// `GET /async-invoke/{invocationArn}`.
    GetAsyncInvoke,
    /// `GET /async-invoke`.
    ListAsyncInvokes,
    /// `POST /guardrail/{guardrailIdentifier}/version/{guardrailVersion}/apply`.
    ApplyGuardrail,
    // bedrock-agent-runtime, model ARNs in the body
    /// `POST /agents/{sessionId}`.
    InvokeInlineAgent,
    /// `POST /knowledgebases/{knowledgeBaseId}/retrieve`.
    Retrieve,
    /// `POST /retrieveAndGenerate`.
    RetrieveAndGenerate,
    /// `POST /retrieveAndGenerateStream`.
    RetrieveAndGenerateStream,
    /// `POST /rerank`.
    Rerank,
    /// `POST /optimize-prompt`.
    OptimizePrompt,
}

/// Where an operation carries its model identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelLocation {
    /// The `{modelId}` path label.
    Path,
    /// A top-level string member of the JSON body with this exact name (required).
    BodyField(&'static str),
    /// Any member with one of these names, at any depth of the JSON body (zero or more).
    BodyAnywhere(&'static [&'static str]),
    /// The operation names no model.
    None,
}

/// Body keys that carry model references in bedrock-agent-runtime requests. A collaborator's
/// `agentAliasArn` counts as a model: it names an agent whose model is configured server-side,
/// so it is opaque (allowed only by an ARN pattern).
pub const AGENT_MODEL_KEYS: &[&str] = &[
    "foundationModel",
    "modelArn",
    "targetModelId",
    "agentAliasArn",
];

/// A resource other than a model that a request names and that receives customer data (or,
/// for `Account`, the account that owns one). Each kind is allowed only when the bundle's
/// `resources` lists it (accounts: `accounts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    /// An S3 location an operation writes its output to (`s3://bucket/prefix`).
    S3Output,
    /// A KMS key that encrypts stored output or session data.
    KmsKey,
    /// A Lambda function an agent calls with customer data.
    Lambda,
    /// A knowledge base that receives the query.
    KnowledgeBase,
    /// A guardrail that receives the content.
    Guardrail,
    /// The account that owns a resource (`bucketOwner`).
    Account,
}

impl ResourceKind {
    /// The bundle field (under `resources`) that lists this kind.
    pub(crate) fn bundle_field(self) -> &'static str {
        match self {
            ResourceKind::S3Output => "resources.s3_outputs",
            ResourceKind::KmsKey => "resources.kms_keys",
            ResourceKind::Lambda => "resources.lambdas",
            ResourceKind::KnowledgeBase => "resources.knowledge_bases",
            ResourceKind::Guardrail => "resources.guardrails",
            ResourceKind::Account => "accounts",
        }
    }

    /// A short human name.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            ResourceKind::S3Output => "S3 output location",
            ResourceKind::KmsKey => "KMS key",
            ResourceKind::Lambda => "Lambda function",
            ResourceKind::KnowledgeBase => "knowledge base",
            ResourceKind::Guardrail => "guardrail",
            ResourceKind::Account => "bucket owner account",
        }
    }
}

/// Where an operation's body names resources (see [`ResourceKind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResourceFields {
    /// The body names no resource (or is not read).
    None,
    /// Any member with one of these names, at any depth.
    Anywhere(&'static [(&'static str, ResourceKind)]),
    /// Members at exactly these object paths from the root.
    Paths(&'static [(&'static [&'static str], ResourceKind)]),
}

/// The resource members of bedrock-agent-runtime bodies, by name at any depth (the shapes
/// nest them under lists of collaborators, action groups and knowledge bases). A member with
/// one of these names anywhere is read as that resource: the guard does not guess which
/// members are free-form.
const AGENT_RESOURCE_KEYS: &[(&str, ResourceKind)] = &[
    ("lambda", ResourceKind::Lambda),
    ("overrideLambda", ResourceKind::Lambda),
    ("knowledgeBaseId", ResourceKind::KnowledgeBase),
    ("guardrailIdentifier", ResourceKind::Guardrail),
    ("guardrailId", ResourceKind::Guardrail),
    ("customerEncryptionKeyArn", ResourceKind::KmsKey),
    ("kmsKeyArn", ResourceKind::KmsKey),
];

/// The resource members of a StartAsyncInvoke body (`modelInput` is the model's own document
/// and is never read).
const ASYNC_RESOURCE_PATHS: &[(&[&str], ResourceKind)] = &[
    (
        &["outputDataConfig", "s3OutputDataConfig", "s3Uri"],
        ResourceKind::S3Output,
    ),
    (
        &["outputDataConfig", "s3OutputDataConfig", "kmsKeyId"],
        ResourceKind::KmsKey,
    ),
    (
        &["outputDataConfig", "s3OutputDataConfig", "bucketOwner"],
        ResourceKind::Account,
    ),
];

impl Operation {
    /// Every operation, in declaration order.
    pub const ALL: [Operation; 19] = [
        Operation::InvokeModel,
        Operation::InvokeModelWithResponseStream,
        Operation::Converse,
        Operation::ConverseStream,
        Operation::CountTokens,
        Operation::InvokeModelWithBidirectionalStream,
        Operation::StartAsyncInvoke,
        Operation::ChatCompletions,
        Operation::Responses,
        Operation::AnthropicMessages,
        Operation::GetAsyncInvoke,
        Operation::ListAsyncInvokes,
        Operation::ApplyGuardrail,
        Operation::InvokeInlineAgent,
        Operation::Retrieve,
        Operation::RetrieveAndGenerate,
        Operation::RetrieveAndGenerateStream,
        Operation::Rerank,
        Operation::OptimizePrompt,
    ];

    /// The name used in bundles, audit records (`eventName`) and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::InvokeModel => "InvokeModel",
            Operation::InvokeModelWithResponseStream => "InvokeModelWithResponseStream",
            Operation::Converse => "Converse",
            Operation::ConverseStream => "ConverseStream",
            Operation::CountTokens => "CountTokens",
            Operation::InvokeModelWithBidirectionalStream => "InvokeModelWithBidirectionalStream",
            Operation::StartAsyncInvoke => "StartAsyncInvoke",
            Operation::ChatCompletions => "ChatCompletions",
            Operation::Responses => "Responses",
            Operation::AnthropicMessages => "AnthropicMessages",
            Operation::GetAsyncInvoke => "GetAsyncInvoke",
            Operation::ListAsyncInvokes => "ListAsyncInvokes",
            Operation::ApplyGuardrail => "ApplyGuardrail",
            Operation::InvokeInlineAgent => "InvokeInlineAgent",
            Operation::Retrieve => "Retrieve",
            Operation::RetrieveAndGenerate => "RetrieveAndGenerate",
            Operation::RetrieveAndGenerateStream => "RetrieveAndGenerateStream",
            Operation::Rerank => "Rerank",
            Operation::OptimizePrompt => "OptimizePrompt",
        }
    }

    /// The operation named `name` (exact spelling, as [`Operation::as_str`] writes it).
    pub fn from_name(name: &str) -> Option<Operation> {
        Operation::ALL
            .iter()
            .copied()
            .find(|op| op.as_str() == name)
    }

    /// Where requests of this operation carry their model.
    pub fn model_location(self) -> ModelLocation {
        match self {
            Operation::InvokeModel
            | Operation::InvokeModelWithResponseStream
            | Operation::Converse
            | Operation::ConverseStream
            | Operation::CountTokens
            | Operation::InvokeModelWithBidirectionalStream => ModelLocation::Path,
            Operation::StartAsyncInvoke => ModelLocation::BodyField("modelId"),
            Operation::ChatCompletions | Operation::Responses | Operation::AnthropicMessages => {
                ModelLocation::BodyField("model")
            }
            Operation::GetAsyncInvoke | Operation::ListAsyncInvokes | Operation::ApplyGuardrail => {
                ModelLocation::None
            }
            Operation::InvokeInlineAgent
            | Operation::Retrieve
            | Operation::RetrieveAndGenerate
            | Operation::RetrieveAndGenerateStream
            | Operation::Rerank
            | Operation::OptimizePrompt => ModelLocation::BodyAnywhere(AGENT_MODEL_KEYS),
        }
    }

    /// Where the body names resources other than models.
    pub(crate) fn resource_fields(self) -> ResourceFields {
        match self {
            Operation::StartAsyncInvoke => ResourceFields::Paths(ASYNC_RESOURCE_PATHS),
            Operation::InvokeInlineAgent
            | Operation::Retrieve
            | Operation::RetrieveAndGenerate
            | Operation::RetrieveAndGenerateStream
            | Operation::Rerank
            | Operation::OptimizePrompt => ResourceFields::Anywhere(AGENT_RESOURCE_KEYS),
            _ => ResourceFields::None,
        }
    }

    /// Does the engine need the whole body before deciding?
    pub fn needs_body(self) -> bool {
        matches!(
            self.model_location(),
            ModelLocation::BodyField(_) | ModelLocation::BodyAnywhere(_)
        )
    }

    /// Query parameter names the API defines for this operation (all others are refused).
    fn allowed_query_params(self) -> &'static [&'static str] {
        match self {
            Operation::ListAsyncInvokes => &[
                "submitTimeAfter",
                "submitTimeBefore",
                "statusEquals",
                "maxResults",
                "nextToken",
                "sortBy",
                "sortOrder",
            ],
            _ => &[],
        }
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A recognised route: the operation and, for path-carried models, the raw model segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch<'a> {
    /// The operation the method and path name.
    pub operation: Operation,
    /// The raw (still percent-encoded) `{modelId}` segment for path-carried operations.
    pub model_segment: Option<&'a [u8]>,
    /// A resource the path names: the async invocation ARN of GetAsyncInvoke, the guardrail of
    /// ApplyGuardrail, the knowledge base of Retrieve. Decoded once, already checked against
    /// the label's grammar.
    pub(crate) resource: Option<PathResource>,
}

/// A resource named by a path label: GetAsyncInvoke's invocation ARN, ApplyGuardrail's
/// guardrail, Retrieve's knowledge base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathResource {
    /// The async invocation ARN read by GetAsyncInvoke (checked for partition, region and
    /// account, like every ARN a request names).
    AsyncInvocation(String),
    /// A resource the bundle must list: a guardrail id or ARN, or a knowledge base id.
    Listed(ResourceKind, String),
}

/// What makes a raw path ambiguous (refused before any routing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathDefect {
    /// Not origin-form: the path does not start with `/` (an absolute URI, `*`, ...).
    #[error("path does not start with a slash")]
    NotOriginForm,
    /// A byte outside printable ASCII, or `#`, `\` or `;`.
    #[error("path contains a byte outside printable ASCII or one of # \\ ;")]
    ForbiddenByte,
    /// A percent escape of a control character or a backslash.
    #[error("path contains an encoded control character or backslash")]
    ForbiddenEscape,
    /// A `%` not followed by two hex digits.
    #[error("path contains a malformed percent escape")]
    BadEscape,
    /// An empty segment: `//`, or the path `/` alone.
    #[error("path contains an empty segment")]
    EmptySegment,
    /// A `/` at the end.
    #[error("path ends with a slash")]
    TrailingSlash,
    /// A `.` or `..` segment, also percent-encoded.
    #[error("path contains a dot segment")]
    DotSegment,
}

/// Why a (method, path) pair was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The raw path is ambiguous. Under `/model/` this is `model_unparseable` (the path is
    /// trying to carry a model id), elsewhere `operation_unknown`.
    #[error("{defect}")]
    Malformed {
        /// What is ambiguous.
        defect: PathDefect,
        /// The path starts `/model/`.
        under_model: bool,
    },
    /// No operation has this path (`operation_unknown`).
    #[error("path is not a known Bedrock operation")]
    UnknownPath,
    /// The path is an operation's, the method is not (`operation_unknown`).
    #[error("method is not allowed for this operation")]
    MethodNotAllowed,
    /// A path label that does not have its API shape (a guardrail id, an invocation ARN, ...;
    /// `operation_unknown`).
    #[error("path parameter is malformed")]
    InvalidParameter,
    /// A query string on an operation whose API defines none (`query_not_allowed`).
    #[error("query string is not allowed for this operation")]
    QueryNotAllowed,
    /// A `?` with nothing after it (`query_not_allowed`).
    #[error("query string is empty")]
    QueryEmpty,
    /// A query parameter the operation does not define (`query_not_allowed`).
    #[error("query parameter is not defined for this operation")]
    QueryParamNotAllowed,
    /// A query parameter given twice (`query_not_allowed`).
    #[error("query parameter appears more than once")]
    QueryParamRepeated,
    /// A query parameter that is not `name=value` (`query_not_allowed`).
    #[error("query parameter is not a name=value pair")]
    QueryParamMalformed,
}

impl RouteError {
    /// The reason code the refusal carries (given with each variant).
    pub fn reason(&self) -> Reason {
        match self {
            RouteError::Malformed {
                under_model: true, ..
            } => Reason::ModelUnparseable,
            RouteError::Malformed { .. }
            | RouteError::UnknownPath
            | RouteError::MethodNotAllowed
            | RouteError::InvalidParameter => Reason::OperationUnknown,
            RouteError::QueryNotAllowed
            | RouteError::QueryEmpty
            | RouteError::QueryParamNotAllowed
            | RouteError::QueryParamRepeated
            | RouteError::QueryParamMalformed => Reason::QueryNotAllowed,
        }
    }
}

/// No catalogue path has more segments than this.
const MAX_SEGMENTS: usize = 5;

/// Recognise the operation from the method and the raw `:path` (query included).
pub fn classify<'a>(method: &[u8], raw_path: &'a [u8]) -> Result<RouteMatch<'a>, RouteError> {
    let mut halves = raw_path.splitn(2, |&b| b == b'?');
    let path = halves.next().unwrap_or_default();
    let query = halves.next();
    let under_model = path.split(|&b| b == b'/').find(|s| !s.is_empty()) == Some(b"model");
    let malformed = |defect| RouteError::Malformed {
        defect,
        under_model,
    };

    check_raw_bytes(raw_path).map_err(malformed)?;
    let Some(rest) = path.strip_prefix(b"/") else {
        return Err(malformed(PathDefect::NotOriginForm));
    };

    let mut segments: [&'a [u8]; MAX_SEGMENTS] = [&[]; MAX_SEGMENTS];
    let mut count = 0usize;
    let mut iter = rest.split(|&b| b == b'/').peekable();
    while let Some(segment) = iter.next() {
        if segment.is_empty() {
            let trailing = iter.peek().is_none() && count > 0;
            return Err(malformed(if trailing {
                PathDefect::TrailingSlash
            } else {
                PathDefect::EmptySegment
            }));
        }
        if decodes_to_dot_segment(segment) {
            return Err(malformed(PathDefect::DotSegment));
        }
        // Keep checking every segment for defects, but only the first few are routed.
        if let Some(slot) = segments.get_mut(count) {
            *slot = segment;
        }
        count = count.saturating_add(1);
    }
    if count > MAX_SEGMENTS {
        return Err(RouteError::UnknownPath);
    }
    let segments = segments.get(..count).unwrap_or_default();

    let (operation, model_segment) = lookup(method, segments)?;
    check_query(operation, query)?;
    let resource = path_resource(operation, segments);
    Ok(RouteMatch {
        operation,
        model_segment,
        resource,
    })
}

/// Byte rules over the whole raw path (query included): printable ASCII only, none of
/// `#`, `\`, `;`, and every `%` followed by two hex digits that do not encode a control
/// byte or a backslash.
fn check_raw_bytes(raw: &[u8]) -> Result<(), PathDefect> {
    let mut bytes = raw.iter().copied();
    while let Some(b) = bytes.next() {
        match b {
            b'#' | b'\\' | b';' => return Err(PathDefect::ForbiddenByte),
            b'%' => {
                let hi = bytes.next().and_then(hex_value);
                let lo = bytes.next().and_then(hex_value);
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(PathDefect::BadEscape);
                };
                let decoded = (hi << 4) | lo;
                if decoded < 0x20 || decoded == 0x7f || decoded == b'\\' {
                    return Err(PathDefect::ForbiddenEscape);
                }
            }
            0x21..=0x7e => {}
            _ => return Err(PathDefect::ForbiddenByte),
        }
    }
    Ok(())
}

/// Does this raw segment, decoded once, read `.` or `..` (`.`, `%2E`, `.%2e`, ...)?
/// Escapes were already checked to be well-formed.
fn decodes_to_dot_segment(segment: &[u8]) -> bool {
    let mut dots = 0usize;
    let mut bytes = segment.iter().copied();
    while let Some(b) = bytes.next() {
        let decoded = if b == b'%' {
            match (
                bytes.next().and_then(hex_value),
                bytes.next().and_then(hex_value),
            ) {
                (Some(hi), Some(lo)) => (hi << 4) | lo,
                _ => return false,
            }
        } else {
            b
        };
        if decoded != b'.' {
            return false;
        }
        dots = dots.saturating_add(1);
    }
    (1..=2).contains(&dots)
}

/// The catalogue: literal segments, then method, then label shapes.
fn lookup<'a>(
    method: &[u8],
    segments: &[&'a [u8]],
) -> Result<(Operation, Option<&'a [u8]>), RouteError> {
    use Operation as Op;
    let post = |op: Operation| expect_method(method, b"POST", op);
    match segments {
        [b"model", model, op] => {
            let op = match *op {
                b"invoke" => Op::InvokeModel,
                b"invoke-with-response-stream" => Op::InvokeModelWithResponseStream,
                b"converse" => Op::Converse,
                b"converse-stream" => Op::ConverseStream,
                b"count-tokens" => Op::CountTokens,
                b"invoke-with-bidirectional-stream" => Op::InvokeModelWithBidirectionalStream,
                _ => return Err(RouteError::UnknownPath),
            };
            Ok((post(op)?, Some(*model)))
        }
        [b"async-invoke"] => match method {
            b"POST" => Ok((Op::StartAsyncInvoke, None)),
            b"GET" => Ok((Op::ListAsyncInvokes, None)),
            _ => Err(RouteError::MethodNotAllowed),
        },
        [b"async-invoke", invocation] => {
            let op = expect_method(method, b"GET", Op::GetAsyncInvoke)?;
            label(is_async_invoke_arn(invocation))?;
            Ok((op, None))
        }
        [b"guardrail", identifier, b"version", version, b"apply"] => {
            let op = post(Op::ApplyGuardrail)?;
            label(is_guardrail_identifier(identifier) && is_guardrail_version(version))?;
            Ok((op, None))
        }
        [b"openai", b"v1", b"chat", b"completions"] => Ok((post(Op::ChatCompletions)?, None)),
        [b"openai", b"v1", b"responses"] => Ok((post(Op::Responses)?, None)),
        [b"anthropic", b"v1", b"messages"] => Ok((post(Op::AnthropicMessages)?, None)),
        [b"agents", session] => {
            let op = post(Op::InvokeInlineAgent)?;
            label(is_session_id(session))?;
            Ok((op, None))
        }
        [b"knowledgebases", kb, b"retrieve"] => {
            let op = post(Op::Retrieve)?;
            label(is_knowledge_base_id(kb))?;
            Ok((op, None))
        }
        [b"retrieveAndGenerate"] => Ok((post(Op::RetrieveAndGenerate)?, None)),
        [b"retrieveAndGenerateStream"] => Ok((post(Op::RetrieveAndGenerateStream)?, None)),
        [b"rerank"] => Ok((post(Op::Rerank)?, None)),
        [b"optimize-prompt"] => Ok((post(Op::OptimizePrompt)?, None)),
        _ => Err(RouteError::UnknownPath),
    }
}

/// The resource a recognised path names (its label already passed the grammar check).
fn path_resource(op: Operation, segments: &[&[u8]]) -> Option<PathResource> {
    match (op, segments) {
        (Operation::GetAsyncInvoke, [_, arn]) => {
            decode_label(arn, 256).map(PathResource::AsyncInvocation)
        }
        (Operation::ApplyGuardrail, [_, id, ..]) => {
            decode_label(id, 2048).map(|id| PathResource::Listed(ResourceKind::Guardrail, id))
        }
        (Operation::Retrieve, [_, kb, _]) => {
            decode_label(kb, 10).map(|kb| PathResource::Listed(ResourceKind::KnowledgeBase, kb))
        }
        _ => None,
    }
}

fn expect_method(method: &[u8], expected: &[u8], op: Operation) -> Result<Operation, RouteError> {
    if method == expected {
        Ok(op)
    } else {
        Err(RouteError::MethodNotAllowed)
    }
}

fn label(valid: bool) -> Result<(), RouteError> {
    if valid {
        Ok(())
    } else {
        Err(RouteError::InvalidParameter)
    }
}

/// `name=value` pairs, every name defined for the operation, each at most once.
fn check_query(op: Operation, query: Option<&[u8]>) -> Result<(), RouteError> {
    let Some(query) = query else {
        return Ok(());
    };
    let allowed = op.allowed_query_params();
    if allowed.is_empty() {
        return Err(RouteError::QueryNotAllowed);
    }
    if query.is_empty() {
        return Err(RouteError::QueryEmpty);
    }
    let mut seen = 0u64;
    for pair in query.split(|&b| b == b'&') {
        let mut name_value = pair.splitn(2, |&b| b == b'=');
        let name = name_value.next().unwrap_or_default();
        if name.is_empty() || name_value.next().is_none() {
            return Err(RouteError::QueryParamMalformed);
        }
        let index = allowed
            .iter()
            .position(|n| n.as_bytes() == name)
            .ok_or(RouteError::QueryParamNotAllowed)?;
        // The catalogue defines far fewer than 64 parameters per operation; a longer list
        // would be refused rather than have its repeats missed.
        let bit = u32::try_from(index)
            .ok()
            .and_then(|i| 1u64.checked_shl(i))
            .filter(|_| index < 64)
            .ok_or(RouteError::QueryParamNotAllowed)?;
        if seen & bit != 0 {
            return Err(RouteError::QueryParamRepeated);
        }
        seen |= bit;
    }
    Ok(())
}

/// Decode a label once, bounded; `None` for a bad escape, an oversized label or non-UTF-8.
fn decode_label(raw: &[u8], max_decoded: usize) -> Option<String> {
    if raw.len() > max_decoded.saturating_mul(3) {
        return None;
    }
    let mut out = Vec::with_capacity(raw.len());
    percent_decode_once(raw, &mut out).ok()?;
    if out.len() > max_decoded {
        return None;
    }
    String::from_utf8(out).ok()
}

/// `arn:aws[-x]:bedrock:<region>:<12 digits>:async-invoke/<12 lowercase alnum>`, once decoded.
fn is_async_invoke_arn(raw: &[u8]) -> bool {
    decode_label(raw, 256).is_some_and(|text| {
        bedrock_arn_resource(&text, "async-invoke")
            .is_some_and(|id| id.len() == 12 && id.bytes().all(is_lower_alnum))
    })
}

/// `[a-z0-9]{1,64}` as is, or (decoded once) a guardrail ARN with such an id.
fn is_guardrail_identifier(raw: &[u8]) -> bool {
    let is_id = |id: &[u8]| (1..=64).contains(&id.len()) && id.iter().copied().all(is_lower_alnum);
    if is_id(raw) {
        return true;
    }
    decode_label(raw, 2048).is_some_and(|text| {
        bedrock_arn_resource(&text, "guardrail").is_some_and(|id| is_id(id.as_bytes()))
    })
}

/// `[1-9][0-9]{0,7}` or `DRAFT`, written literally.
fn is_guardrail_version(raw: &[u8]) -> bool {
    if raw == b"DRAFT" {
        return true;
    }
    match raw.split_first() {
        Some((first, tail)) => {
            (b'1'..=b'9').contains(first) && tail.len() <= 7 && tail.iter().all(u8::is_ascii_digit)
        }
        None => false,
    }
}

/// `[0-9a-zA-Z._:-]{1,100}` once decoded (SDKs encode the `:`).
fn is_session_id(raw: &[u8]) -> bool {
    decode_label(raw, 100).is_some_and(|text| {
        !text.is_empty()
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
    })
}

/// `[0-9a-zA-Z]{1,10}`, written literally.
fn is_knowledge_base_id(raw: &[u8]) -> bool {
    (1..=10).contains(&raw.len()) && raw.iter().all(u8::is_ascii_alphanumeric)
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// For `arn:<partition>:bedrock:<region>:<account>:<resource_type>/<id>` with a non-empty
/// region and a 12-digit account, the `<id>`.
fn bedrock_arn_resource<'t>(text: &'t str, resource_type: &str) -> Option<&'t str> {
    let mut parts = text.splitn(6, ':');
    let ok = parts.next() == Some("arn")
        && parts.next().is_some_and(is_partition)
        && parts.next() == Some("bedrock")
        && parts
            .next()
            .is_some_and(|r| !r.is_empty() && is_arn_region(r))
        && parts.next().is_some_and(is_account);
    if !ok {
        return None;
    }
    let (kind, id) = parts.next()?.split_once('/')?;
    (kind == resource_type).then_some(id)
}
