//! The operation catalogue: which Bedrock operation a (method, raw path) pair is, and where
//! its model identifier lives.

/// A recognised Bedrock operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    // bedrock-runtime, model in the path
    InvokeModel,
    InvokeModelWithResponseStream,
    Converse,
    ConverseStream,
    CountTokens,
    InvokeModelWithBidirectionalStream,
    // bedrock-runtime, model in the body
    StartAsyncInvoke,
    ChatCompletions,
    Responses,
    AnthropicMessages,
    // bedrock-runtime, no model
    GetAsyncInvoke,
    ListAsyncInvokes,
    ApplyGuardrail,
    // bedrock-agent-runtime, model ARNs in the body
    InvokeInlineAgent,
    Retrieve,
    RetrieveAndGenerate,
    RetrieveAndGenerateStream,
    Rerank,
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

/// Body keys that carry model references in bedrock-agent-runtime requests.
pub const AGENT_MODEL_KEYS: &[&str] = &["foundationModel", "modelArn", "targetModelId"];

impl Operation {
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

    pub fn from_name(name: &str) -> Option<Operation> {
        Operation::ALL.iter().copied().find(|op| op.as_str() == name)
    }

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

    /// Does the engine need the whole body before deciding?
    pub fn needs_body(self) -> bool {
        matches!(
            self.model_location(),
            ModelLocation::BodyField(_) | ModelLocation::BodyAnywhere(_)
        )
    }

    /// Query parameter names the API defines for this operation (all others are refused).
    pub fn allowed_query_params(self) -> &'static [&'static str] {
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
    pub operation: Operation,
    /// The raw (still percent-encoded) `{modelId}` segment for path-carried operations.
    pub model_segment: Option<&'a [u8]>,
}

/// Why a (method, path) pair was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("placeholder")]
    Placeholder,
}

impl RouteError {
    pub fn reason(&self) -> crate::decision::Reason {
        crate::decision::Reason::OperationUnknown
    }
}

/// Recognise the operation from the method and the raw `:path` (query included).
pub fn classify<'a>(_method: &[u8], _raw_path: &'a [u8]) -> Result<RouteMatch<'a>, RouteError> {
    Err(RouteError::Placeholder)
}
