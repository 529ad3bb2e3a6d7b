//! Model-id canonicalisation and ARN parsing.
//!
//! A model id is accepted only in one unambiguous form: the `{modelId}` path label is
//! percent-decoded exactly once (as AWS's restJson1 router does), and the decoded text must
//! then use the conservative alphabet `[A-Za-z0-9._:/-]`, be 1..=2048 bytes, and carry a `/`
//! only inside the resource part of a well-formed ARN. Everything else is refused, never
//! guessed. The canonical text is exactly the decoded text: never lowercased, never trimmed.
//!
//! # Case
//!
//! Bedrock's own identifiers are lower-case: base model ids, system inference-profile ids
//! (their geography prefix included), application-profile, provisioned, custom and imported
//! model ids, and the ARN prefix (partition, service, region, resource type). AWS does not
//! document whether Bedrock folds case, so the guard never depends on it: an id of one of
//! those kinds with an upper-case letter is refused (`model_invalid`), never matched. The
//! resource kinds whose ids may legitimately carry upper case (prompts, prompt routers, agent
//! aliases, SageMaker endpoints, bare opaque names) are opaque: allowed only by an exact ARN
//! pattern (or, for a bare name, the exact name), and deny patterns match them without regard
//! to case.

use crate::aws::is_partition;
use crate::decision::Reason;

/// Longest accepted model id, in bytes (the Bedrock `ModelIdentifier` maximum).
const MAX_MODEL_ID_LEN: usize = 2048;

/// Resource types of the `bedrock` service that name a model (or something that stands for one).
const BEDROCK_MODEL_TYPES: &[&str] = &[
    "foundation-model",
    "inference-profile",
    "application-inference-profile",
    "provisioned-model",
    "custom-model",
    "custom-model-deployment",
    "imported-model",
    "prompt",
    "prompt-router",
    "default-prompt-router",
    "agent-alias",
];

/// Resource types of the `sagemaker` service accepted as a model (Marketplace endpoints).
const SAGEMAKER_MODEL_TYPES: &[&str] = &["endpoint"];

/// The only resource types whose id can say which model runs (a foundation model, or a system
/// inference profile named after one); every other known type hides it (is opaque). An id of
/// one of these types that does not have the shape of a base model or system-profile id is
/// opaque too (see [`Arn::is_opaque`]).
const TRANSPARENT_TYPES: &[&str] = &["foundation-model", "inference-profile"];

/// Resource types whose ids Bedrock writes in lower case only (an upper-case letter is
/// `model_invalid`). The others (prompts, prompt routers, agent aliases, SageMaker endpoints)
/// may carry upper case and are opaque.
const LOWER_CASE_TYPES: &[&str] = &[
    "foundation-model",
    "inference-profile",
    "application-inference-profile",
    "provisioned-model",
    "custom-model",
    "custom-model-deployment",
    "imported-model",
];

/// A parsed Amazon Resource Name whose resource part names a model-like resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arn {
    /// The whole ARN, canonical (exactly the decoded text).
    pub raw: String,
    /// `aws`, `aws-us-gov`, `aws-cn`, ... (shaped like a partition, not checked against a
    /// list).
    pub partition: String,
    /// `bedrock`, or `sagemaker` (Marketplace endpoints).
    pub service: String,
    /// May be empty (e.g. the IAM-only global foundation-model ARN).
    pub region: String,
    /// Empty for foundation-model ARNs.
    pub account: String,
    /// e.g. `foundation-model`, `inference-profile`, `application-inference-profile`,
    /// `provisioned-model`, `custom-model`, `custom-model-deployment`, `imported-model`,
    /// `prompt`, `prompt-router`, `default-prompt-router`, `endpoint` (SageMaker).
    pub resource_type: String,
    /// Everything after the first `/` of the resource part (may itself contain `/` and `:`).
    pub resource_id: String,
}

impl Arn {
    /// Parse and validate a model ARN written as plain text (e.g. in a bundle). The same rules
    /// as for a body-carried id apply; a text that is not an ARN is refused with `NotAnArn`.
    pub fn parse(text: &str) -> Result<Arn, ModelError> {
        match parse_body_model_id(text)? {
            ModelRef::Arn(arn) => Ok(arn),
            ModelRef::Plain { .. } => Err(ModelError::NotAnArn),
        }
    }

    /// Does the resource id hide the model that really runs? True for application inference
    /// profiles, provisioned, custom, imported models, prompts, prompt routers, agent aliases
    /// and SageMaker endpoints, and for a `foundation-model/` or `inference-profile/` id that
    /// does not have the shape of a transparent id: a foundation-model id needs a `.`
    /// (`provider.model`), a system-profile id a geography prefix (`geo.provider.model`). So
    /// an application-profile id written under `inference-profile/` or `foundation-model/` is
    /// opaque, never a transparent id that `*` allows.
    fn is_opaque(&self) -> bool {
        match self.resource_type.as_str() {
            "foundation-model" => !self.resource_id.contains('.'),
            "inference-profile" => geo_prefix(&self.resource_id).is_none(),
            _ => !TRANSPARENT_TYPES.contains(&self.resource_type.as_str()),
        }
    }
}

/// A canonical model reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelRef {
    /// A bare id: a base model id (`anthropic.claude-3-haiku-20240307-v1:0`) or a system
    /// inference-profile id (`us.anthropic...`). `profile_prefix` is the geography label
    /// (`us`, `eu`, `apac`, `global`, ...) when the id has one.
    Plain {
        /// The id, canonical.
        id: String,
        /// The geography label of a system inference-profile id; `None` for a base model id
        /// or a bare opaque name.
        profile_prefix: Option<String>,
    },
    /// A model ARN (`arn:aws:bedrock:...`).
    Arn(Arn),
}

impl ModelRef {
    /// The canonical text of the id (what patterns match and what is logged).
    pub fn canonical(&self) -> &str {
        match self {
            ModelRef::Plain { id, .. } => id,
            ModelRef::Arn(arn) => &arn.raw,
        }
    }

    /// The parsed ARN, when the id is one.
    fn as_arn(&self) -> Option<&Arn> {
        match self {
            ModelRef::Plain { .. } => None,
            ModelRef::Arn(arn) => Some(arn),
        }
    }

    /// For an ARN, its resource id (for a foundation-model ARN: the base model id; for an
    /// inference-profile ARN: the profile id). `None` for a plain id.
    pub fn resource_id(&self) -> Option<&str> {
        self.as_arn().map(|arn| arn.resource_id.as_str())
    }

    /// Does this reference hide which model actually runs?
    ///
    /// True for ARNs of application inference profiles, provisioned, custom, imported models,
    /// custom-model deployments, prompts, prompt routers, agent aliases and SageMaker
    /// endpoints, and for a `foundation-model/` or `inference-profile/` id without the shape of
    /// a transparent id (`provider.model`, `geo.provider.model`). Also true for a plain id
    /// without any `.`: it cannot be a `provider.model` base id or a system profile id, so it
    /// can only be the bare name or id of one of those opaque resources.
    pub fn is_opaque(&self) -> bool {
        match self {
            ModelRef::Plain { id, .. } => !id.contains('.'),
            ModelRef::Arn(arn) => arn.is_opaque(),
        }
    }

    /// The cross-region (geography) prefix: for a plain id its `profile_prefix`; for an
    /// `inference-profile` or `foundation-model` ARN the same label derived from the resource
    /// id (a `foundation-model/us.anthropic...` ARN goes through the same geography and
    /// base-model checks as the profile forms); `None` otherwise.
    pub fn profile_prefix(&self) -> Option<&str> {
        match self {
            ModelRef::Plain { profile_prefix, .. } => profile_prefix.as_deref(),
            ModelRef::Arn(arn)
                if matches!(
                    arn.resource_type.as_str(),
                    "inference-profile" | "foundation-model"
                ) =>
            {
                geo_prefix(&arn.resource_id)
            }
            ModelRef::Arn(_) => None,
        }
    }
}

/// Why a model id was refused: `model_unparseable`, except an upper-case letter where Bedrock
/// writes lower case, which is `model_invalid` ([`ModelError::reason`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// No id at all.
    #[error("model id is empty")]
    Empty,
    /// Longer than 2048 bytes (after decoding).
    #[error("model id is longer than 2048 bytes")]
    TooLong,
    /// A `%` in the path label not followed by two hex digits.
    #[error("model id contains a malformed percent escape")]
    BadEscape,
    /// A raw `/` in the path label (a segment boundary, never part of the id).
    #[error("model id segment contains an unencoded slash")]
    RawSlash,
    /// A `%` left after decoding the path label once: double encoding.
    #[error("model id contains a percent sign after decoding")]
    PercentAfterDecode,
    /// A `%` in a body-carried id (which is never percent-decoded).
    #[error("model id contains a percent sign")]
    PercentSign,
    /// A byte outside ASCII.
    #[error("model id contains a non-ASCII byte")]
    NonAscii,
    /// A control character, space or DEL.
    #[error("model id contains a control character or whitespace")]
    ControlOrSpace,
    /// Any other character outside `[A-Za-z0-9._:/-]`.
    #[error("model id contains a character outside [A-Za-z0-9._:/-]")]
    ForbiddenCharacter,
    /// The id, or a component of an ARN's resource id, is `.` or `..`.
    #[error("model id contains a dot segment")]
    DotSegment,
    /// An ARN resource id with an empty `/`-separated component.
    #[error("model id contains an empty path component")]
    EmptyPathComponent,
    /// A `/` in an id that is not an ARN.
    #[error("model id contains a slash outside an ARN resource")]
    SlashOutsideArn,
    /// `ARN:`, `Arn:`, ...: an ARN prefix not written in lower case.
    #[error("model id starts with a non-lowercase ARN prefix")]
    ArnPrefixCase,
    /// Fewer than six `:`-separated parts.
    #[error("ARN has too few parts")]
    ArnTooFewParts,
    /// A partition not shaped like `aws` or `aws-<name>`.
    #[error("ARN partition is not recognised")]
    ArnPartition,
    /// A service other than `bedrock` and `sagemaker`.
    #[error("ARN service is not bedrock or sagemaker")]
    ArnService,
    /// A region field that is not empty or `[a-z0-9-]{1,20}`.
    #[error("ARN region is malformed")]
    ArnRegion,
    /// An account field that is not empty or 12 digits.
    #[error("ARN account is not 12 digits")]
    ArnAccount,
    /// A resource part that is not `type/id` with a lower-case type and a non-empty id (or a
    /// multi-component id where the type allows one component).
    #[error("ARN resource is not of the form type/id")]
    ArnResource,
    /// A resource type that names no model of its service.
    #[error("ARN resource type is not a model resource of its service")]
    ArnResourceType,
    /// [`Arn::parse`] given a text that is not an ARN.
    #[error("model reference is not an ARN")]
    NotAnArn,
    /// An upper-case letter in an id Bedrock writes in lower case (`model_invalid`).
    #[error(
        "model id has an upper-case letter: Bedrock model ids, profile prefixes and \
         application-profile ids are lower-case"
    )]
    NonCanonicalCase,
}

impl ModelError {
    /// `model_invalid` for [`ModelError::NonCanonicalCase`], `model_unparseable` otherwise.
    pub fn reason(&self) -> Reason {
        match self {
            ModelError::NonCanonicalCase => Reason::ModelInvalid,
            _ => Reason::ModelUnparseable,
        }
    }
}

/// Canonicalise the raw `{modelId}` path segment: percent-decode exactly once and reject
/// every ambiguity.
pub fn parse_path_model_id(raw_segment: &[u8]) -> Result<ModelRef, ModelError> {
    if raw_segment.is_empty() {
        return Err(ModelError::Empty);
    }
    // Each decoded byte takes at most three raw bytes; anything longer cannot fit.
    if raw_segment.len() > MAX_MODEL_ID_LEN.saturating_mul(3) {
        return Err(ModelError::TooLong);
    }
    // A raw `/` would be a segment boundary for AWS: it never belongs to the label.
    if raw_segment.contains(&b'/') {
        return Err(ModelError::RawSlash);
    }
    let mut decoded = Vec::with_capacity(raw_segment.len());
    percent_decode_once(raw_segment, &mut decoded).map_err(|()| ModelError::BadEscape)?;
    check_id_bytes(&decoded, ModelError::PercentAfterDecode)?;
    // Every byte is ASCII now, so this conversion cannot fail; stay total anyway.
    let id = String::from_utf8(decoded).map_err(|_| ModelError::NonAscii)?;
    parse_checked(id)
}

/// Canonicalise a model id taken from a JSON body (already JSON-unescaped; never
/// percent-decoded).
pub fn parse_body_model_id(value: &str) -> Result<ModelRef, ModelError> {
    check_id_bytes(value.as_bytes(), ModelError::PercentSign)?;
    parse_checked(value.to_owned())
}

/// Decode `%XX` escapes exactly once into `out` (hex case-insensitive). A `%` not followed by
/// two hex digits is an error. Bytes other than escapes are copied unchanged.
pub(crate) fn percent_decode_once(raw: &[u8], out: &mut Vec<u8>) -> Result<(), ()> {
    let mut bytes = raw.iter().copied();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hi = bytes.next().and_then(hex_value).ok_or(())?;
            let lo = bytes.next().and_then(hex_value).ok_or(())?;
            out.push((hi << 4) | lo);
        } else {
            out.push(b);
        }
    }
    Ok(())
}

/// The value of one ASCII hex digit.
pub(crate) fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The byte-level rules shared by path- and body-carried ids: length and alphabet.
/// `percent_error` is the error for a `%` (double encoding in a path, an unexpected escape in
/// a body).
fn check_id_bytes(id: &[u8], percent_error: ModelError) -> Result<(), ModelError> {
    if id.is_empty() {
        return Err(ModelError::Empty);
    }
    if id.len() > MAX_MODEL_ID_LEN {
        return Err(ModelError::TooLong);
    }
    for &b in id {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b':' | b'/' | b'-' => {}
            b'%' => return Err(percent_error),
            0x80..=0xff => return Err(ModelError::NonAscii),
            0x00..=0x20 | 0x7f => return Err(ModelError::ControlOrSpace),
            _ => return Err(ModelError::ForbiddenCharacter),
        }
    }
    if is_dot_component(id) {
        return Err(ModelError::DotSegment);
    }
    Ok(())
}

fn is_dot_component(component: &[u8]) -> bool {
    component == b"." || component == b".."
}

/// Structure of an id whose bytes already passed `check_id_bytes`.
fn parse_checked(id: String) -> Result<ModelRef, ModelError> {
    if id.starts_with("arn:") {
        return parse_arn(id).map(ModelRef::Arn);
    }
    if id
        .get(..4)
        .is_some_and(|head| head.eq_ignore_ascii_case("arn:"))
    {
        // `ARN:`/`Arn:` is neither a valid ARN nor a model id: refuse instead of guessing.
        return Err(ModelError::ArnPrefixCase);
    }
    if id.contains('/') {
        return Err(ModelError::SlashOutsideArn);
    }
    // A plain id with a `.` is a base model or system-profile id: lower-case only. Without a
    // `.` it is the bare name of an opaque resource (a provisioned model's name may carry
    // upper case), matched exactly.
    if id.contains('.') && id.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(ModelError::NonCanonicalCase);
    }
    let profile_prefix = geo_prefix(&id).map(str::to_owned);
    Ok(ModelRef::Plain { id, profile_prefix })
}

fn parse_arn(raw: String) -> Result<Arn, ModelError> {
    let mut parts = raw.splitn(6, ':');
    let _arn = parts.next();
    let (Some(partition), Some(service), Some(region), Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(ModelError::ArnTooFewParts);
    };
    if !is_partition(partition) {
        return Err(ModelError::ArnPartition);
    }
    let allowed_types = match service {
        "bedrock" => BEDROCK_MODEL_TYPES,
        "sagemaker" => SAGEMAKER_MODEL_TYPES,
        _ => return Err(ModelError::ArnService),
    };
    if !is_arn_region(region) {
        return Err(ModelError::ArnRegion);
    }
    if !(account.is_empty() || is_account(account)) {
        return Err(ModelError::ArnAccount);
    }
    let Some((resource_type, resource_id)) = resource.split_once('/') else {
        return Err(ModelError::ArnResource);
    };
    if resource_type.is_empty()
        || !resource_type
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'-')
    {
        return Err(ModelError::ArnResource);
    }
    if resource_id.is_empty() {
        return Err(ModelError::ArnResource);
    }
    for component in resource_id.split('/') {
        if component.is_empty() {
            return Err(ModelError::EmptyPathComponent);
        }
        if is_dot_component(component.as_bytes()) {
            return Err(ModelError::DotSegment);
        }
    }
    if !allowed_types.contains(&resource_type) {
        return Err(ModelError::ArnResourceType);
    }
    if LOWER_CASE_TYPES.contains(&resource_type) {
        // Foundation-model, system and application profile ids are single components.
        if resource_type != "custom-model" && resource_id.contains('/') {
            return Err(ModelError::ArnResource);
        }
        if resource_id.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ModelError::NonCanonicalCase);
        }
    }
    Ok(Arn {
        partition: partition.to_owned(),
        service: service.to_owned(),
        region: region.to_owned(),
        account: account.to_owned(),
        resource_type: resource_type.to_owned(),
        resource_id: resource_id.to_owned(),
        raw,
    })
}

/// The region field of an ARN: empty, or `[a-z0-9-]{1,20}` (looser than `aws::is_region`,
/// which says whether a name is shaped like a region).
pub(crate) fn is_arn_region(r: &str) -> bool {
    r.len() <= 20
        && r.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Exactly twelve ASCII digits.
pub(crate) fn is_account(a: &str) -> bool {
    a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit())
}

/// The geography label of a system inference-profile id: any id with at least two dots is
/// read as `geo.provider.model`, and its first label is the geography, whatever its shape
/// (base model ids have exactly one dot). The set of labels is open on purpose: an unknown
/// or oddly shaped label is not a reason to treat the id as a base model that `*` allows; it
/// is a geography the bundle has to list (and `network.profile_geographies` only takes
/// `[a-z-]` labels, so a label with digits or upper case can never be allowed).
fn geo_prefix(id: &str) -> Option<&str> {
    if id.bytes().filter(|&b| b == b'.').count() < 2 {
        return None;
    }
    let (label, _) = id.split_once('.')?;
    Some(label)
}
