//! `rules`: ids, effects and modes, and each rule's operations, models and principals,
//! compiled into the matchers requests are checked against.

use crate::bundle::schema::{Effect, ModeSpec, Principals, Rule};
use crate::bundle::validate::{self as v, Errors};
use crate::decision::Mode;
use crate::matcher::{FoldedPatternSet, PatternSet};
use crate::request::{ModelLocation, Operation};

// Operation sets are bit sets indexed by the operation's position in `Operation::ALL`.
const _: () = assert!(Operation::ALL.len() <= 64);

/// A set of operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct OpSet(u64);

impl OpSet {
    fn bit(op: Operation) -> u64 {
        Operation::ALL
            .iter()
            .position(|o| *o == op)
            .and_then(|i| 1u64.checked_shl(u32::try_from(i).unwrap_or(u32::MAX)))
            .unwrap_or(0)
    }

    fn insert(&mut self, op: Operation) {
        self.0 |= OpSet::bit(op);
    }

    pub(crate) fn contains(self, op: Operation) -> bool {
        self.0 & OpSet::bit(op) != 0
    }
}

/// A rule's model patterns, compiled three times: `all` for ordinary ids, `arn_only` (the
/// patterns written as ARNs) for opaque resources, which an allow rule may only name by ARN,
/// and `folded` (every pattern, matched without regard to case) for deny rules, so that no
/// case variant of a denied id escapes the deny.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelMatcher {
    pub(crate) all: PatternSet,
    pub(crate) arn_only: PatternSet,
    pub(crate) folded: FoldedPatternSet,
}

impl ModelMatcher {
    /// Compile a rule's `models` patterns (already validated).
    pub fn new<'a>(patterns: impl IntoIterator<Item = &'a str>) -> ModelMatcher {
        let mut all = PatternSet::default();
        let mut arn_only = PatternSet::default();
        let mut folded = FoldedPatternSet::default();
        for p in patterns {
            all.insert(p);
            folded.insert(p);
            if p.starts_with("arn:") {
                arn_only.insert(p);
            }
        }
        ModelMatcher {
            all,
            arn_only,
            folded,
        }
    }
}

/// Principal conditions (kept compiled for when verified identities arrive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PrincipalMatcher {
    pub(crate) subjects: PatternSet,
    pub(crate) groups: PatternSet,
    pub(crate) claims: Vec<(String, PatternSet)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CompiledRule {
    /// The rule's position in the bundle's `rules` (`rules[index]`): deny and allow rules are
    /// kept apart, and a trace of the engine's matching (`engine::RuleTrace`) names rules by it.
    pub(crate) index: usize,
    pub(crate) id: String,
    /// Deny rules: the effective mode (rule `mode`, forced to dry-run by a dry-run bundle).
    /// Allow rules: always enforce.
    pub(crate) mode: Mode,
    pub(crate) operations: Option<OpSet>,
    pub(crate) models: Option<ModelMatcher>,
    pub(crate) principals: Option<PrincipalMatcher>,
}

#[inline(never)] // config-time: kept out of `compile` (see compile/mod.rs)
pub(super) fn compile_rule(
    i: usize,
    rule: &Rule,
    bundle_mode: Mode,
    has_identity: bool,
    errs: &mut Errors,
) -> Option<(Effect, CompiledRule)> {
    let at = format!("rules[{i}]");
    let before = errs.0.len();

    match rule.id.as_deref() {
        Some(id) => errs.check(|| format!("{at}.id"), v::identifier(id)),
        None => errs.push(format!("{at}.id"), "required"),
    }
    if rule.effect.is_none() {
        errs.push(format!("{at}.effect"), "required (\"allow\" or \"deny\")");
    }
    if let Some(text) = rule.description.as_deref() {
        errs.check(|| format!("{at}.description"), v::description(text));
    }
    if rule.effect == Some(Effect::Allow) && rule.mode.is_some() {
        errs.push(
            format!("{at}.mode"),
            "only deny rules take a mode: a dry-run allow has no meaning (set the bundle's mode to \"dry-run\" to trial a whole bundle)",
        );
    }

    let operations = rule.operations.as_deref().map(|ops| {
        let mut set = OpSet::default();
        if ops.is_empty() {
            errs.push(
                format!("{at}.operations"),
                "must not be empty (omit it to match every operation)",
            );
        }
        for (j, name) in ops.iter().enumerate() {
            match Operation::from_name(name) {
                Some(op) => {
                    if set.contains(op) {
                        errs.push(
                            format!("{at}.operations[{j}]"),
                            format!("duplicate operation {name:?}"),
                        );
                    }
                    set.insert(op);
                }
                None => errs.push(
                    format!("{at}.operations[{j}]"),
                    format!("unknown operation {name:?} (known: {})", known_operations()),
                ),
            }
        }
        (set, ops)
    });

    let models = rule.models.as_deref().map(|patterns| {
        if patterns.is_empty() {
            errs.push(
                format!("{at}.models"),
                "must not be empty (omit it to match every model)",
            );
        }
        for (j, p) in patterns.iter().enumerate() {
            errs.check(|| format!("{at}.models[{j}]"), v::model_pattern(p));
            if patterns.get(..j).is_some_and(|before| before.contains(p)) {
                errs.push(
                    format!("{at}.models[{j}]"),
                    format!("duplicate pattern {p:?}"),
                );
            }
        }
        ModelMatcher::new(patterns.iter().map(String::as_str))
    });

    if let (Some(_), Some((_, names))) = (&models, &operations) {
        let any_with_model = names
            .iter()
            .filter_map(|n| Operation::from_name(n))
            .any(|op| op.model_location() != ModelLocation::None);
        let all_known = names.iter().all(|n| Operation::from_name(n).is_some());
        if !names.is_empty() && all_known && !any_with_model {
            errs.push(
                format!("{at}.models"),
                "can never match: none of the rule's operations names a model",
            );
        }
    }

    if rule.effect == Some(Effect::Allow) && rule.models.is_none() && rule.operations.is_none() {
        errs.push(
            at.clone(),
            "an allow rule without models or operations would allow everything; name models or operations",
        );
    }
    // An allow rule without `models` would allow any model (opaque ones included) for its
    // operations: every operation that can carry a model needs `models` (`["*"]` for any
    // transparent model).
    if let (Some(Effect::Allow), None, Some((_, names))) = (rule.effect, &rule.models, &operations)
    {
        let carrying: Vec<&str> = names
            .iter()
            .filter_map(|n| Operation::from_name(n))
            .filter(|op| op.model_location() != ModelLocation::None)
            .map(Operation::as_str)
            .collect();
        if !carrying.is_empty() {
            errs.push(
                format!("{at}.models"),
                format!(
                    "required: {} can name a model, so this allow rule must say which (models: \
                     [\"*\"] allows any transparent model; opaque resources need ARN patterns); \
                     put the operations that name no model ({}) in a rule of their own",
                    carrying.join(", "),
                    model_less_operations()
                ),
            );
        }
    }

    let principals = rule
        .principals
        .as_ref()
        .map(|p| compile_principals(&at, p, has_identity, errs));

    if errs.0.len() != before {
        return None;
    }
    let effect = rule.effect?;
    let mode = match effect {
        Effect::Allow => Mode::Enforce,
        Effect::Deny => match (bundle_mode, rule.mode) {
            (Mode::DryRun, _) | (_, Some(ModeSpec::DryRun)) => Mode::DryRun,
            _ => Mode::Enforce,
        },
    };
    Some((
        effect,
        CompiledRule {
            index: i,
            id: rule.id.clone().unwrap_or_default(),
            mode,
            operations: operations.map(|(set, _)| set),
            models,
            principals,
        },
    ))
}

#[inline(never)] // config-time: kept out of `compile` (see compile/mod.rs)
fn compile_principals(
    at: &str,
    p: &Principals,
    has_identity: bool,
    errs: &mut Errors,
) -> PrincipalMatcher {
    let pat = format!("{at}.principals");
    if !has_identity {
        errs.push(
            pat.clone(),
            "principals need an identity block: without verified tokens no caller can match",
        );
    }
    if p.subjects.is_empty() && p.groups.is_empty() && p.claims.0.is_empty() {
        errs.push(
            pat.clone(),
            "names no subjects, groups or claims; omit principals to match every caller",
        );
    }
    let mut set_of = |field: &str, values: &[String]| {
        for (j, value) in values.iter().enumerate() {
            errs.check(
                || format!("{pat}.{field}[{j}]"),
                v::principal_pattern(value),
            );
        }
        PatternSet::new(values.iter().map(String::as_str))
    };
    let subjects = set_of("subjects", &p.subjects);
    let groups = set_of("groups", &p.groups);
    let mut claims = Vec::with_capacity(p.claims.0.len());
    for (name, values) in &p.claims.0 {
        let cat = format!("{pat}.claims.{name}");
        errs.check(|| format!("{pat}.claims"), v::claim_name(name));
        if values.is_empty() {
            errs.push(cat.clone(), "must list at least one pattern");
        }
        for (j, value) in values.iter().enumerate() {
            errs.check(|| format!("{cat}[{j}]"), v::principal_pattern(value));
        }
        claims.push((
            name.clone(),
            PatternSet::new(values.iter().map(String::as_str)),
        ));
    }
    PrincipalMatcher {
        subjects,
        groups,
        claims,
    }
}

fn model_less_operations() -> String {
    Operation::ALL
        .iter()
        .filter(|op| op.model_location() == ModelLocation::None)
        .map(|op| op.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn known_operations() -> String {
    Operation::ALL
        .iter()
        .map(|op| op.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
