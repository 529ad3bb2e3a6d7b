//! Model-id canonicalisation (bedrock-api.md §2, §2.6; security.md §1.4).

use policies::request::{
    classify, parse_body_model_id, parse_path_model_id, Arn, ModelError, ModelRef,
};
use policies::Reason;

/// Percent-encode like botocore's non-greedy labels: everything but `A-Za-z0-9-._~`.
fn encode(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The canonical id of `POST /model/<raw>/converse`, or the refusal reason (route or model).
fn via_path(raw: &str) -> Result<String, Reason> {
    let path = format!("/model/{raw}/converse");
    let m = classify(b"POST", path.as_bytes()).map_err(|e| e.reason())?;
    let segment = m.model_segment.ok_or(Reason::OperationUnknown)?;
    parse_path_model_id(segment)
        .map(|r| r.canonical().to_owned())
        .map_err(|e| e.reason())
}

fn path_id(raw: &str) -> Result<ModelRef, ModelError> {
    parse_path_model_id(raw.as_bytes())
}

fn arn(text: &str) -> Arn {
    match parse_body_model_id(text) {
        Ok(ModelRef::Arn(arn)) => arn,
        other => panic!("not an ARN: {text}: {other:?}"),
    }
}

// ---------------------------------------------------------------- every §2.2 example, encoded like botocore

const EXAMPLES: &[&str] = &[
    "anthropic.claude-3-5-sonnet-20240620-v1:0",
    "amazon.titan-text-express-v1",
    "anthropic.claude-3-haiku-20240307-v1:0:200k",
    "openai.gpt-oss-20b-1:0",
    "anthropic.claude-sonnet-4-6",
    "qwen.qwen3-vl-235b-a22b",
    "us.anthropic.claude-sonnet-4-20250514-v1:0",
    "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20241022-v2:0",
    "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6",
    "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abcdef123456",
    "arn:aws:bedrock:us-east-1:123456789012:custom-model/amazon.titan-text-express-v1:0:8k/abcdef123456",
    "arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/abcdef123456",
    "arn:aws:bedrock:us-east-1:123456789012:imported-model/abcdef123456",
    "arn:aws:bedrock:us-east-1:111122223333:prompt/PROMPT12345:1",
    "arn:aws:bedrock:us-east-1:123456789012:prompt-router/anthropic.claude:1",
    "arn:aws:bedrock:us-east-1:123456789012:default-prompt-router/anthropic.claude:1",
    "arn:aws:sagemaker:us-east-1:123456789012:endpoint/my-endpoint",
    "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0",
];

#[test]
fn accepts_every_documented_identifier_encoded_like_botocore() {
    for id in EXAMPLES {
        assert_eq!(via_path(&encode(id)), Ok((*id).to_owned()), "{id}");
    }
}

#[test]
fn accepts_every_documented_identifier_from_a_body_unchanged() {
    for id in EXAMPLES {
        assert_eq!(
            parse_body_model_id(id).map(|r| r.canonical().to_owned()),
            Ok((*id).to_owned())
        );
    }
}

#[test]
fn canonical_text_parses_back_to_the_same_reference() {
    for id in EXAMPLES {
        let first = path_id(&encode(id)).unwrap();
        assert_eq!(
            parse_body_model_id(first.canonical()),
            Ok(first.clone()),
            "{id}"
        );
    }
}

#[test]
fn accepts_the_documented_converse_example_with_encoded_colon_and_slash() {
    let raw = "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-3-5-sonnet-20241022-v2%3A0";
    let expected = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20241022-v2:0";
    assert_eq!(via_path(raw), Ok(expected.to_owned()));
}

#[test]
fn accepts_raw_colons_as_aws_does() {
    assert_eq!(
        via_path("anthropic.claude-3-haiku-20240307-v1:0"),
        Ok("anthropic.claude-3-haiku-20240307-v1:0".into())
    );
}

#[test]
fn accepts_lowercase_escapes_identically() {
    assert_eq!(
        via_path("anthropic.claude-v2%3a1"),
        via_path("anthropic.claude-v2%3A1")
    );
    assert_eq!(
        via_path("arn%3aaws%3abedrock%3aus-east-1%3a123456789012%3ainference-profile%2fus.a.b"),
        Ok("arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.a.b".into())
    );
}

#[test]
fn accepts_inference_profile_arn_with_encoded_slash() {
    let r = path_id("arn:aws:bedrock:eu-west-1:123456789012:inference-profile%2Feu.anthropic.claude-3-haiku-20240307-v1:0").unwrap();
    assert_eq!(
        r.resource_id(),
        Some("eu.anthropic.claude-3-haiku-20240307-v1:0")
    );
}

#[test]
fn accepts_encoded_unreserved_characters_as_their_decoded_form() {
    assert_eq!(
        via_path("%61nthropic.claude-v2"),
        Ok("anthropic.claude-v2".into())
    );
}

// ---------------------------------------------------------------- case and exactness

#[test]
fn refuses_upper_case_in_a_model_id_as_model_invalid_never_folds_it() {
    for raw in [
        "Anthropic.claude-3-haiku-20240307-v1%3A0",
        "anthropic.claude-Opus-4",
        "US.anthropic.claude-opus-4",
        "Meta.llama3-8b-instruct-v1%3A0",
    ] {
        assert_eq!(
            parse_path_model_id(raw.as_bytes()),
            Err(ModelError::NonCanonicalCase),
            "{raw}"
        );
        assert_eq!(ModelError::NonCanonicalCase.reason(), Reason::ModelInvalid);
    }
}

#[test]
fn keeps_underscores() {
    assert_eq!(via_path("my_custom_model"), Ok("my_custom_model".into()));
}

// ---------------------------------------------------------------- length

#[test]
fn accepts_2048_bytes_and_refuses_2049() {
    assert_eq!(
        path_id(&"a".repeat(2048)).map(|r| r.canonical().len()),
        Ok(2048)
    );
    assert_eq!(path_id(&"a".repeat(2049)), Err(ModelError::TooLong));
}

#[test]
fn counts_length_after_decoding() {
    let encoded = format!("{}%3A0", "a".repeat(2046));
    assert_eq!(path_id(&encoded).map(|r| r.canonical().len()), Ok(2048));
    assert_eq!(path_id(&format!("a{encoded}")), Err(ModelError::TooLong));
}

#[test]
fn refuses_empty_id() {
    assert_eq!(path_id(""), Err(ModelError::Empty));
    assert_eq!(parse_body_model_id(""), Err(ModelError::Empty));
}

// ---------------------------------------------------------------- encodings that must not be guessed

#[test]
fn refuses_double_encoded_colon() {
    assert_eq!(
        path_id("anthropic.claude-v2%253A1"),
        Err(ModelError::PercentAfterDecode)
    );
    assert_eq!(
        via_path("anthropic.claude-v2%253A1"),
        Err(Reason::ModelUnparseable)
    );
}

#[test]
fn refuses_double_encoded_slash() {
    let raw = "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%252Fus.a.b";
    assert_eq!(path_id(raw), Err(ModelError::PercentAfterDecode));
}

#[test]
fn refuses_bad_escape() {
    assert_eq!(path_id("a%G1"), Err(ModelError::BadEscape));
    assert_eq!(path_id("a%4"), Err(ModelError::BadEscape));
    assert_eq!(path_id("a%"), Err(ModelError::BadEscape));
}

#[test]
fn refuses_unencoded_slash_in_the_raw_segment() {
    assert_eq!(
        path_id("arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.a.b"),
        Err(ModelError::RawSlash)
    );
}

#[test]
fn refuses_trailing_encoded_space() {
    assert_eq!(
        path_id("anthropic.claude-v2%20"),
        Err(ModelError::ControlOrSpace)
    );
    assert_eq!(
        path_id("%20anthropic.claude-v2"),
        Err(ModelError::ControlOrSpace)
    );
}

#[test]
fn refuses_encoded_nul_tab_and_newline() {
    for raw in ["a%00b", "a%09b", "a%0Ab", "a%0Db", "a%7Fb"] {
        assert_eq!(path_id(raw), Err(ModelError::ControlOrSpace), "{raw}");
    }
}

#[test]
fn refuses_fullwidth_colon() {
    assert_eq!(
        path_id("anthropic.claude-v2%EF%BC%9A1"),
        Err(ModelError::NonAscii)
    );
}

#[test]
fn refuses_raw_non_ascii() {
    assert_eq!(
        parse_path_model_id(b"anthropic.claude\xc3\xa9"),
        Err(ModelError::NonAscii)
    );
    assert_eq!(parse_path_model_id(b"\xff"), Err(ModelError::NonAscii));
}

#[test]
fn refuses_encoded_reserved_characters_outside_the_alphabet() {
    for raw in [
        "a%2Bb", "a%3Fb", "a%23b", "a%3Bb", "a%5Cb", "a%40b", "a%2Cb", "a%7Eb", "a%2Ab", "a+b",
        "a~b",
    ] {
        assert_eq!(path_id(raw), Err(ModelError::ForbiddenCharacter), "{raw}");
    }
}

#[test]
fn refuses_dot_and_dot_dot_ids_however_encoded() {
    assert_eq!(path_id("."), Err(ModelError::DotSegment));
    assert_eq!(path_id("%2E%2E"), Err(ModelError::DotSegment));
    assert_eq!(path_id("%2e."), Err(ModelError::DotSegment));
}

#[test]
fn accepts_dots_that_are_not_a_whole_component() {
    assert_eq!(
        path_id("...").map(|r| r.canonical().to_owned()),
        Ok("...".into())
    );
    assert_eq!(
        path_id("a..b").map(|r| r.canonical().to_owned()),
        Ok("a..b".into())
    );
}

#[test]
fn refuses_encoded_slash_outside_an_arn() {
    assert_eq!(
        path_id("anthropic.claude-v2%2Fx"),
        Err(ModelError::SlashOutsideArn)
    );
    assert_eq!(path_id("..%2F..%2Fetc"), Err(ModelError::SlashOutsideArn));
}

// ---------------------------------------------------------------- ARN structure

#[test]
fn refuses_dot_segment_inside_arn_resource() {
    let raw = "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2F..%2Fx";
    assert_eq!(path_id(raw), Err(ModelError::DotSegment));
    assert_eq!(via_path(raw), Err(Reason::ModelUnparseable));
}

#[test]
fn refuses_dot_as_the_whole_arn_resource_id() {
    assert_eq!(
        parse_body_model_id("arn:aws:bedrock:us-east-1:123456789012:inference-profile/."),
        Err(ModelError::DotSegment)
    );
    assert_eq!(
        parse_body_model_id("arn:aws:bedrock:us-east-1:123456789012:custom-model/a/.."),
        Err(ModelError::DotSegment)
    );
}

#[test]
fn refuses_empty_component_inside_arn_resource() {
    let base = "arn:aws:bedrock:us-east-1:123456789012:custom-model";
    assert_eq!(
        parse_body_model_id(&format!("{base}/a//b")),
        Err(ModelError::EmptyPathComponent)
    );
    assert_eq!(
        parse_body_model_id(&format!("{base}/a/")),
        Err(ModelError::EmptyPathComponent)
    );
    assert_eq!(
        parse_body_model_id(&format!("{base}/")),
        Err(ModelError::ArnResource)
    );
}

#[test]
fn accepts_custom_model_arn_with_slash_inside_resource() {
    let a = arn("arn:aws:bedrock:us-east-1:123456789012:custom-model/amazon.titan-text-express-v1:0:8k/abcdef123456");
    assert_eq!(a.resource_type, "custom-model");
    assert_eq!(
        a.resource_id,
        "amazon.titan-text-express-v1:0:8k/abcdef123456"
    );
}

#[test]
fn refuses_arn_with_unknown_resource_type() {
    for t in [
        "guardrail",
        "knowledge-base",
        "agent",
        "async-invoke",
        "foundation-models",
        "Foundation-model",
    ] {
        let text = format!("arn:aws:bedrock:us-east-1:123456789012:{t}/x");
        assert!(
            matches!(
                parse_body_model_id(&text),
                Err(ModelError::ArnResourceType | ModelError::ArnResource)
            ),
            "{t}"
        );
    }
}

#[test]
fn refuses_resource_type_of_the_other_service() {
    let endpoint_in_bedrock = "arn:aws:bedrock:us-east-1:123456789012:endpoint/my-endpoint";
    let model_in_sagemaker = "arn:aws:sagemaker:us-east-1::foundation-model/a.b";
    assert_eq!(
        parse_body_model_id(endpoint_in_bedrock),
        Err(ModelError::ArnResourceType)
    );
    assert_eq!(
        parse_body_model_id(model_in_sagemaker),
        Err(ModelError::ArnResourceType)
    );
}

#[test]
fn refuses_arn_account_that_is_not_twelve_digits() {
    let at = |acct: &str| {
        parse_body_model_id(&format!(
            "arn:aws:bedrock:us-east-1:{acct}:provisioned-model/abcdef123456"
        ))
    };
    assert_eq!(at("12345678901"), Err(ModelError::ArnAccount));
    assert_eq!(at("1234567890123"), Err(ModelError::ArnAccount));
    assert_eq!(at("12345678901a"), Err(ModelError::ArnAccount));
    assert!(at("123456789012").is_ok());
}

#[test]
fn accepts_foundation_model_arn_with_empty_account() {
    let a =
        arn("arn:aws:bedrock:us-west-2::foundation-model/anthropic.claude-3-haiku-20240307-v1:0");
    assert_eq!((a.region.as_str(), a.account.as_str()), ("us-west-2", ""));
    assert_eq!(a.resource_id, "anthropic.claude-3-haiku-20240307-v1:0");
}

#[test]
fn accepts_global_foundation_model_arn_with_empty_region() {
    let a = arn("arn:aws:bedrock:::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0");
    assert_eq!((a.region.as_str(), a.account.as_str()), ("", ""));
}

#[test]
fn refuses_malformed_region() {
    let at = |r: &str| parse_body_model_id(&format!("arn:aws:bedrock:{r}::foundation-model/a.b"));
    assert_eq!(at("US-EAST-1"), Err(ModelError::ArnRegion));
    assert_eq!(at(&"a".repeat(21)), Err(ModelError::ArnRegion));
    assert_eq!(at("us_east_1"), Err(ModelError::ArnRegion));
    assert!(at(&"a".repeat(20)).is_ok());
}

#[test]
fn accepts_partitions_of_the_aws_family() {
    for p in [
        "aws",
        "aws-cn",
        "aws-us-gov",
        "aws-iso",
        "aws-iso-b",
        "aws-eusc",
    ] {
        let a = arn(&format!(
            "arn:{p}:bedrock:r1:123456789012:imported-model/abcdef123456"
        ));
        assert_eq!(a.partition, p);
    }
}

#[test]
fn refuses_partitions_outside_the_aws_family() {
    for p in ["", "AWS", "aws-", "aws_cn", "awscn", "azure", "aws-CN"] {
        let text = format!("arn:{p}:bedrock:us-east-1:123456789012:imported-model/abcdef123456");
        assert_eq!(
            parse_body_model_id(&text),
            Err(ModelError::ArnPartition),
            "{p:?}"
        );
    }
}

#[test]
fn refuses_services_other_than_bedrock_and_sagemaker() {
    for s in ["bedrock-runtime", "Bedrock", "s3", ""] {
        let text = format!("arn:aws:{s}:us-east-1::foundation-model/a.b");
        assert_eq!(
            parse_body_model_id(&text),
            Err(ModelError::ArnService),
            "{s:?}"
        );
    }
}

#[test]
fn refuses_arn_with_too_few_parts_or_no_resource_type() {
    assert_eq!(
        parse_body_model_id("arn:aws:bedrock:us-east-1"),
        Err(ModelError::ArnTooFewParts)
    );
    assert_eq!(
        parse_body_model_id("arn:aws:bedrock:us-east-1::foundation-model"),
        Err(ModelError::ArnResource)
    );
    assert_eq!(
        parse_body_model_id("arn:aws:bedrock:us-east-1::foundation-model:a.b"),
        Err(ModelError::ArnResource)
    );
    assert_eq!(
        parse_body_model_id("arn:aws:bedrock:us-east-1::/a.b"),
        Err(ModelError::ArnResource)
    );
}

#[test]
fn refuses_non_lowercase_arn_prefix() {
    assert_eq!(
        parse_body_model_id("ARN:aws:bedrock:us-east-1::foundation-model:a.b"),
        Err(ModelError::ArnPrefixCase)
    );
    assert_eq!(
        parse_body_model_id("Arn:aws"),
        Err(ModelError::ArnPrefixCase)
    );
}

#[test]
fn treats_arn_lookalike_without_colon_as_plain_id() {
    assert!(matches!(
        parse_body_model_id("arnold.model-v1"),
        Ok(ModelRef::Plain { .. })
    ));
}

#[test]
fn accepts_sagemaker_endpoint_arn() {
    let a = arn("arn:aws:sagemaker:us-east-1:123456789012:endpoint/my-endpoint");
    assert_eq!(
        (
            a.service.as_str(),
            a.resource_type.as_str(),
            a.resource_id.as_str()
        ),
        ("sagemaker", "endpoint", "my-endpoint")
    );
}

#[test]
fn accepts_prompt_arn_with_version_longer_than_the_service_model_regex() {
    let a = arn("arn:aws:bedrock:us-east-1:111122223333:prompt/PROMPT12345:1");
    assert_eq!(
        (a.resource_type.as_str(), a.resource_id.as_str()),
        ("prompt", "PROMPT12345:1")
    );
}

#[test]
fn arn_fields_are_split_exactly() {
    let a = arn("arn:aws-us-gov:bedrock:us-gov-west-1:123456789012:inference-profile/us-gov.anthropic.claude-sonnet-4-5-20250929-v1:0");
    assert_eq!(a.partition, "aws-us-gov");
    assert_eq!(
        (a.service.as_str(), a.region.as_str(), a.account.as_str()),
        ("bedrock", "us-gov-west-1", "123456789012")
    );
    assert_eq!(a.raw, "arn:aws-us-gov:bedrock:us-gov-west-1:123456789012:inference-profile/us-gov.anthropic.claude-sonnet-4-5-20250929-v1:0");
}

#[test]
fn arn_parse_accepts_arns_and_refuses_plain_ids() {
    assert!(Arn::parse("arn:aws:bedrock:us-east-1::foundation-model/a.b").is_ok());
    assert_eq!(Arn::parse("anthropic.claude-v2"), Err(ModelError::NotAnArn));
    assert_eq!(
        Arn::parse("arn:aws:bedrock:us-east-1::guardrail/a"),
        Err(ModelError::ArnResourceType)
    );
}

// ---------------------------------------------------------------- profile prefixes

#[test]
fn recognises_open_set_of_geography_prefixes() {
    let cases = [
        ("us.anthropic.claude-3-5-sonnet-20241022-v2:0", "us"),
        ("eu.anthropic.claude-3-haiku-20240307-v1:0", "eu"),
        ("apac.anthropic.claude-3-haiku-20240307-v1:0", "apac"),
        ("jp.anthropic.claude-haiku-4-5-20251001-v1:0", "jp"),
        ("au.anthropic.claude-sonnet-4-6", "au"),
        ("ca.anthropic.claude-sonnet-4-20250514-v1:0", "ca"),
        ("us-gov.anthropic.claude-sonnet-4-5-20250929-v1:0", "us-gov"),
        ("global.anthropic.claude-sonnet-4-5-20250929-v1:0", "global"),
        ("mars-one.anthropic.claude-x", "mars-one"),
    ];
    for (id, prefix) in cases {
        assert_eq!(
            parse_body_model_id(id).unwrap().profile_prefix(),
            Some(prefix),
            "{id}"
        );
    }
}

#[test]
fn base_model_ids_have_no_prefix() {
    assert_eq!(
        parse_body_model_id("anthropic.claude-3-haiku-20240307-v1:0")
            .unwrap()
            .profile_prefix(),
        None
    );
    assert_eq!(
        parse_body_model_id("amazon.titan-text-express-v1")
            .unwrap()
            .profile_prefix(),
        None
    );
}

#[test]
fn any_id_with_two_dots_is_a_profile_whatever_its_first_label() {
    // An oddly shaped first label is a geography the bundle must list (and cannot, for
    // labels outside [a-z-]), never a base model id that `*` allows.
    for (id, geo) in [
        ("anthropic.claude.v2", "anthropic"),
        ("u.anthropic.claude", "u"),
        ("u5.anthropic.claude", "u5"),
        ("apac2.anthropic.claude", "apac2"),
    ] {
        assert_eq!(
            parse_body_model_id(id).unwrap().profile_prefix(),
            Some(geo),
            "{id}"
        );
    }
    assert_eq!(
        parse_body_model_id("US.anthropic.claude"),
        Err(ModelError::NonCanonicalCase)
    );
}

#[test]
fn plain_id_carries_its_prefix_in_the_variant() {
    let r = parse_body_model_id("eu.anthropic.claude-3-haiku-20240307-v1:0").unwrap();
    assert!(matches!(r, ModelRef::Plain { profile_prefix: Some(ref p), .. } if p == "eu"));
}

#[test]
fn derives_prefix_from_inference_profile_arn_only() {
    let profile = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/global.anthropic.claude-sonnet-4-5-20250929-v1:0";
    let app = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/us.a.b";
    assert_eq!(
        parse_body_model_id(profile).unwrap().profile_prefix(),
        Some("global")
    );
    assert_eq!(parse_body_model_id(app).unwrap().profile_prefix(), None);
}

// ---------------------------------------------------------------- helpers

#[test]
fn resource_id_of_foundation_model_arn_is_the_base_model_id() {
    let r =
        parse_body_model_id("arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-v2:1")
            .unwrap();
    assert_eq!(r.resource_id(), Some("anthropic.claude-v2:1"));
    assert_eq!(
        parse_body_model_id("anthropic.claude-v2:1")
            .unwrap()
            .resource_id(),
        None
    );
}

#[test]
fn opaque_resources_are_the_ones_that_hide_the_model() {
    let opaque = |id: &str| parse_body_model_id(id).unwrap().is_opaque();
    for id in &EXAMPLES[8..17] {
        assert!(opaque(id), "{id}");
    }
    assert!(opaque(
        "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6"
    ));
    assert!(!opaque("arn:aws:bedrock:us-east-1::foundation-model/a.b"));
    assert!(!opaque(
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.a.b"
    ));
    assert!(!opaque("anthropic.claude-v2"));
}

#[test]
fn plain_id_without_a_dot_is_opaque() {
    // Only a resource name or id (application profile, provisioned throughput) has this shape.
    assert!(parse_body_model_id("a1b2c3d4e5f6").unwrap().is_opaque());
}

// ---------------------------------------------------------------- body-carried ids

#[test]
fn refuses_percent_in_body_carried_id() {
    assert_eq!(
        parse_body_model_id("anthropic.claude-v2%3A1"),
        Err(ModelError::PercentSign)
    );
}

#[test]
fn refuses_whitespace_padded_or_non_ascii_body_id() {
    assert_eq!(
        parse_body_model_id(" anthropic.claude-v2"),
        Err(ModelError::ControlOrSpace)
    );
    assert_eq!(
        parse_body_model_id("anthropic.claude-v2\u{a0}"),
        Err(ModelError::NonAscii)
    );
    assert_eq!(
        parse_body_model_id("anthropic.claude-v2\u{ff1a}1"),
        Err(ModelError::NonAscii)
    );
    assert_eq!(
        parse_body_model_id("anthropic.claude-v2\0"),
        Err(ModelError::ControlOrSpace)
    );
}

#[test]
fn refuses_slash_in_plain_body_id() {
    assert_eq!(
        parse_body_model_id("anthropic/claude"),
        Err(ModelError::SlashOutsideArn)
    );
}

#[test]
fn errors_are_model_unparseable_with_fixed_messages() {
    let err = path_id("SECRET%253A").unwrap_err();
    assert_eq!(err.reason(), Reason::ModelUnparseable);
    assert!(!err.to_string().contains("SECRET"));
}
