//! Argument helpers and the help text of every subcommand.

use std::ffi::OsString;

use super::{CliError, CliResult};

pub(crate) fn os_to_string(command: &'static str, value: OsString) -> CliResult<String> {
    value.into_string().map_err(|v| {
        CliError::usage(
            command,
            format!("argument {} is not valid UTF-8", v.to_string_lossy()),
        )
    })
}

/// The value of the option just read.
pub(crate) fn value(parser: &mut lexopt::Parser, command: &'static str) -> CliResult<String> {
    let v = parser.value().map_err(|e| lex_error(command, e))?;
    os_to_string(command, v)
}

pub(crate) fn lex_error(command: &'static str, e: lexopt::Error) -> CliError {
    CliError::usage(command, e.to_string())
}

/// Print the subcommand's help (for `--help`).
pub(crate) fn print_help(command: &'static str) -> CliResult<u8> {
    print!("{}", help_for(command).unwrap_or_default());
    Ok(super::EXIT_OK)
}

pub(crate) fn help_for(command: &str) -> Option<&'static str> {
    Some(match command {
        "validate" => VALIDATE,
        "digest" => DIGEST,
        "keygen" => KEYGEN,
        "sign" => SIGN,
        "verify" => VERIFY,
        "explain" => EXPLAIN,
        "test" => TEST,
        "ecds" => ECDS,
        "anchor" => ANCHOR,
        "iam" => IAM,
        "schema" => SCHEMA,
        "check-envoy" => CHECK_ENVOY,
        "report" => REPORT,
        "reconcile" => RECONCILE,
        _ => return None,
    })
}

const VALIDATE: &str = "\
Check policy bundles completely.

Usage: bedrock-guard validate [--strict] FILE...

Each FILE is JSON or YAML (by extension .json/.yaml/.yml, else by content; `-` reads stdin).
Prints `FILE: ok (N rules, digest sha256:...)`, or every error as
`FILE:LINE:COLUMN: error: FIELD.PATH: message`. Warnings (rules that can never match, rules
repeating an earlier one, model patterns that do not look like Bedrock model ids) are printed
as `FILE:LINE:COLUMN: warning: ...` and do not fail the check unless --strict.

Options:
      --strict   warnings fail the check (exit 1)
  -h, --help     print this help

Exit status: 0 all valid, 1 a bundle is invalid, 2 a file cannot be read.
";

const DIGEST: &str = "\
Print the digest of a bundle: `sha256:<hex>` of its canonical JSON form (RFC 8785: sorted keys,
no whitespace), so key order, whitespace and JSON-vs-YAML do not change it. The plugin reports
the same digest in audit records and stats.

Usage: bedrock-guard digest FILE

The bundle must be well-formed JSON or YAML (it is not validated; use `validate` for that).

Options:
  -h, --help     print this help
";

const KEYGEN: &str = "\
Create a key pair for signing bundles.

Usage: bedrock-guard keygen --out PREFIX [--alg EdDSA|ES256] [--kid ID] [--force]

Writes PREFIX.key.pem (PKCS#8 private key, mode 0600), PREFIX.pub.pem (SPKI public key) and
PREFIX.pub.jwk.json (public JWK with kid, alg and use). The key id is the RFC 7638 JWK
thumbprint unless --kid is given.

Options:
      --out PREFIX   where to write the three files
      --alg ALG      EdDSA (Ed25519, default) or ES256 (P-256)
      --kid ID       key id to record in the JWK (default: the thumbprint)
      --force        overwrite existing files
  -h, --help         print this help
";

const SIGN: &str = "\
Sign a bundle: a detached JWS over its canonical form.

Usage: bedrock-guard sign FILE --key KEY [--kid ID] [--out FILE.jws]

The bundle must be valid. KEY is a private key: PEM (PKCS#8 `PRIVATE KEY`, or SEC1
`EC PRIVATE KEY`) or a private JWK. The JWS header is
{\"alg\":\"EdDSA\"|\"ES256\",\"kid\":ID,\"typ\":\"bedrock-guard-bundle+jws\"}; the output is
`header..signature` (empty payload part).

Options:
      --key KEY      private key file
      --kid ID       key id for the header (default: the JWK's kid, else its thumbprint)
      --out FILE     where to write the JWS (default: FILE.jws; `-` prints it)
  -h, --help         print this help

Exit status: 0 signed, 1 the bundle is invalid, 2 unreadable input or key.
";

const VERIFY: &str = "\
Verify a bundle's detached JWS against pinned public keys.

Usage: bedrock-guard verify FILE [--sig FILE.jws] --pub KEY [--pub KEY]...

Each KEY file holds PEM public keys, a JWK, or a JWK set. A key is named by its JWK kid, else by
its RFC 7638 thumbprint. Refused: no signature (keys are pinned), an algorithm other than
EdDSA/ES256 or other than the key's, an unknown kid, a bad signature, a header member other than
alg/kid/typ, a repeated header member, an attached payload.

Options:
      --sig FILE     the JWS (default: FILE.jws)
      --pub KEY      a trusted public key file (repeatable)
  -h, --help         print this help

Exit status: 0 verified, 1 verification failed, 2 unreadable input or key.
";

const EXPLAIN: &str = "\
Run one request through a bundle and show the decision: verdict, reason, detail, deciding rule,
mode, operation, canonical model(s), the deny response, and for each rule whether it was
considered and whether it matched.

Usage: bedrock-guard explain FILE --path PATH [--method METHOD] [--authority HOST]
                             [--header 'NAME: VALUE']... [--body FILE|-] [--destination IP]
                             [--token TOKEN|@FILE [--jwks PROVIDER=FILE]... [--now SECONDS]
                              | --caller-sub SUB [--caller-group G]... [--caller-claim N=V]...]
                             [--json]
       bedrock-guard explain FILE --request RAW.http [...] [--json]

Options:
      --method M         request method (default POST)
      --path PATH        raw :path, exactly as sent (percent-encoding and query included)
      --authority HOST   :authority (default: the Host header, else the bundle's first endpoint)
      --header H         a request header `name: value` (repeatable; names are lower-cased)
      --body FILE        request body from FILE (`-` for stdin); sent as is
      --destination IP   the original destination address Envoy saw (transparent interception)
      --token TOKEN      an identity token (`@FILE`: read from FILE, one trailing newline
                         dropped), sent in the bundle's identity header and verified with the
                         bundle's providers as the filter does; never printed (its fingerprint is)
      --jwks P=FILE      keys of provider P, whose keys are remote (remote_jwks), from a JWKS
                         file standing in for the fetched document (repeatable)
      --now SECONDS      verify tokens at this time, seconds since the epoch (default: now)
      --caller-sub SUB   instead of a token, decide as a caller taken as verified, with this
                         subject
      --caller-group G   the caller's groups (repeatable)
      --caller-claim N=V a claim value of the caller (repeatable)
      --request FILE     a captured raw HTTP/1.1 request (origin-form or absolute-form target;
                         the Host header becomes :authority, as in Envoy)
      --json             machine-readable output
  -h, --help             print this help

Which caller: with --caller-sub, that caller; else the token in the bundle's identity header
(--token, or a header from --header/--request), verified as the filter verifies it; with no
token, a bundle with an identity block refuses the request as identity_missing. A bundle without
an identity block decides every request as anonymous. A token that does not verify is
identity_invalid with the filter's detail code (bad_signature, unknown_key, bad_audience,
expired, ...). A token for a provider whose keys are remote needs --jwks for that provider.

Everything shown is the engine's own: its decision, the step that decided, and its trace of the
rules in the order it tried them (rules it did not try are not considered). Exit status: 0
whatever the verdict, 1 invalid bundle, 2 bad input.
";

const TEST: &str = "\
Run a file of test cases against a bundle (for security teams' CI).

Usage: bedrock-guard test FILE --cases CASES.{json,yaml} [--jwks PROVIDER=FILE]... [--now SECONDS]
                          [--verbose]

CASES is a list of cases, or {\"cases\": [...], \"now\": SECONDS, \"jwks\": {\"PROVIDER\": \"FILE\"}},
each
  {\"name\": \"...\",
   \"request\": {\"method\": \"POST\", \"path\": \"/model/.../converse\", \"authority\": \"...\",
               \"headers\": {\"name\": \"value\"} or [\"name: value\", ...],
               \"body\": \"raw text\" or a JSON value, \"destination\": \"10.0.0.1\",
               \"token\": \"eyJ...\"
                 or \"caller\": {\"subject\": \"svc-a\", \"groups\": [\"ml\"], \"claims\": {\"team\": \"x\"}}},
   \"expect\": {\"verdict\": \"allow\"|\"deny\", \"reason\": \"model_denied\", \"rule\": \"no-opus\",
              \"mode\": \"enforce\"|\"dry-run\", \"operation\": \"Converse\"}}
method defaults to POST; authority to the Host header, else the bundle's first endpoint; a body
given as a JSON value is serialised and implies content-type: application/json unless headers
set one. `token` is an identity token sent in the bundle's identity header and verified with the
bundle's identity providers as the filter does (a token that fails gives identity_invalid and
the filter's detail code); `caller` instead names a caller taken as verified (not both). With
neither, the request carries only its headers. The cases file's `now` (and --now, which wins) is
the verification time, seconds since the epoch (default: now): set it so committed tokens do not
expire. A provider whose keys are remote (remote_jwks) takes them from a JWKS file: `jwks`
(paths relative to the cases file) or --jwks (which wins). Prints one line per failed case,
then `N passed, M failed`.

Options:
      --cases FILE   the test cases
      --jwks P=FILE  keys of remote provider P from a JWKS file (repeatable)
      --now SECONDS  verify tokens at this time (default: the cases file's `now`, else now)
  -v, --verbose      also print passing cases
  -h, --help         print this help

Exit status: 0 all passed, 1 a case failed or the bundle is invalid, 2 unreadable input.
";

const ECDS: &str = "\
Write the extension-config (ECDS) resource for a bundle, the file Envoy watches through a
file-based config_source (path_config_source with watched_directory).

Usage: bedrock-guard ecds FILE --out-dir DIR [--name NAME] [--sig FILE.jws [--pub KEY]...]
                            [--pin KEY]... [--wasm PATH] [--vm-id ID]

Writes DIR/NAME.json atomically (a temporary file in DIR renamed over the target), creating DIR
if it does not exist: a DiscoveryResponse with one envoy.config.core.v3.TypedExtensionConfig
named NAME whose typed_config is the Wasm HTTP filter (root_id bedrock_guard, FAIL_RELOAD,
runtime v8). Its plugin configuration is the canonical bundle JSON, or
{\"bundle\": <bundle>, \"signature\": \"<jws>\"} with --sig. With --pin, the VM configuration pins
those public keys: the filter then refuses any bundle not signed by one of them (and Envoy
keeps the previous one). When --wasm names an anchored module that exists here (see
`bedrock-guard anchor`), the bundle is checked as that module will check it: signed by an
anchor key, a revision at or above the anchor's min_revision, an admitted name, the anchor's
vm_id; --pin is refused (an anchored module refuses pinned keys). Prints the path and the
resource version (the bundle digest).

Options:
      --out-dir DIR   the watched directory (created if missing)
      --name NAME     resource (and file) name (default bedrock_guard)
      --sig FILE      ship the bundle with this detached JWS
      --pub KEY       verify --sig against this public key first (repeatable)
      --pin KEY       pin this public key in the VM configuration (repeatable; needs --sig)
      --wasm PATH     the module's local filename (default dist/bedrock_guard.wasm)
      --vm-id ID      the VM id (default bedrock_guard)
  -h, --help          print this help
";

const ANCHOR: &str = "\
Stamp a trust anchor into a copy of the released module, or show a module's anchor.

Usage: bedrock-guard anchor --wasm MODULE --pub KEY [--pub KEY]... --min-revision N
                            [--vm-id ID] [--bundle-name NAME]... --out FILE
       bedrock-guard anchor --show MODULE

The anchored module refuses every bundle that is not signed by one of the anchor's keys, whose
revision is below N or below the highest revision the running Envoy has loaded under the same
bundle name, whose name is not one of the --bundle-name values (when given), or that runs
under another vm_id; it refuses keys pinned by the VM configuration. Whoever writes the ECDS
resource cannot change any of this: pin the anchored module's sha256 in the deployment (see
docs/operations.md, \"Trust anchor\"). The stamp fills a reserved slot in place, so the same
module and anchor always give the same file. Prints the anchor id (also set in the filter
state wasm.bedrock_guard_anchor of every forwarded request) and the new module's sha256.

Options:
      --wasm MODULE        the released (unanchored) module
      --pub KEY            a public key bundles may be signed with (PEM or JWK; repeatable)
      --min-revision N     the lowest bundle revision the module ever loads
      --vm-id ID           the vm_id the module must run under (default bedrock_guard)
      --bundle-name NAME   admit only bundles with this metadata.name (repeatable)
  -o, --out FILE           where to write the anchored module
      --show MODULE        print the anchor stamped into MODULE, and its sha256
  -h, --help               print this help
";

const IAM: &str = "\
Write the AWS-side policies that mirror a bundle, as one JSON document on stdout.

Usage: bedrock-guard iam FILE [--scp] [--vpce-id vpce-...]...

The bundle must be valid. Output members:
  policies.identity_policy       for the workloads' roles: the bundle's allow rules as Allow
                                 statements (operations mapped to IAM actions, model patterns
                                 to foundation-model and inference-profile ARNs in the
                                 endpoints' regions; cross-Region profiles also get their
                                 destination foundation models, conditioned on
                                 bedrock:InferenceProfileArn), enforced deny rules as Deny
                                 statements, a Deny outside the bundle's VPC endpoints
                                 (aws:SourceVpce) and of bedrock:CallWithBearerToken unless the
                                 bundle allows API keys
  policies.vpc_endpoint_policy   for each of the bundle's endpoints: the same Allow statements
                                 for principals of aws.principal_accounts / aws.principal_org_id
                                 (aws:PrincipalAccount, aws:PrincipalOrgID), the same Denies
  policies.service_control_policy  with --scp: Deny statements only (deny rules, PrivateLink,
                                 API keys) and a Deny of
                                 bedrock:PutModelInvocationLoggingConfiguration
  actions                        the operation -> IAM action table used
  vpc_endpoint_ids               the ids aws:SourceVpce allows
  cannot_express                 what IAM cannot express, as {class, subject, why}
  notes                          facts the bundle lacks

VPC endpoint ids come from the endpoints named vpce-<id>-...; endpoints named by service name
(private DNS) carry none: give their ids with --vpce-id. See docs/iam.md.

Options:
      --scp            also write the service control policy
      --vpce-id ID     a VPC endpoint id aws:SourceVpce allows (repeatable)
  -h, --help           print this help

Exit status: 0 written, 1 the bundle is invalid, 2 bad usage, unreadable input, or no VPC
endpoint id known.
";

const SCHEMA: &str = "\
Print the JSON Schema (draft 2020-12) of policy bundle v1: required fields, enums, patterns and
defaults as the validator enforces them, additionalProperties false on every object.

Usage: bedrock-guard schema

Options:
  -h, --help     print this help
";

const CHECK_ENVOY: &str = "\
Check an Envoy configuration that runs the guard for settings that let requests around it,
change what it decides on, or lose its audit record.

Usage: bedrock-guard check-envoy FILE [--json]

FILE (`-` for stdin) is an Envoy bootstrap (YAML or JSON), an admin /config_dump, the output of
`istioctl proxy-config all -o json`, or of `egctl config envoy-proxy all` (JSON or YAML). Prints
one line per finding, `error|warning  PATH  CODE: message`, where PATH names the listener,
filter chain, HTTP filter, route or cluster, then a count. The codes, and how to fix each, are in
docs/cli.md (\"check-envoy\"). An ECDS filter configuration is read from the dump's
EcdsConfigDump, or, for a bootstrap, from its path_config_source file (relative to the
working directory, as Envoy reads it).

Options:
      --json     machine-readable output: {\"findings\": [{\"severity\", \"path\", \"code\",
                 \"message\"}], \"errors\": N, \"warnings\": N}
  -h, --help     print this help

Exit status: 0 no errors (warnings alone pass), 1 an error finding, 2 unreadable or
unrecognised input.
";

const REPORT: &str = "\
Summarise an audit log (Envoy's access log of the guard's audit records, one JSON line each).

Usage: bedrock-guard report AUDIT_LOG [--html FILE] [--json]

Prints the totals (allowed, denied, dry-run denials let through, forwarded, tokens), the
callers (the verified identity's subject `sub:...`, else the access key id `key:...`, else
`(anonymous)`), the models, the refusal reasons, and the requests and tokens per caller and
model per UTC hour. Lines that are not records (blank, `-`, not starting with `{`) are counted
and reported as one warning; a line that starts with `{` but is not a well-formed record stops
the command with FILE:LINE and the field.

Options:
      --html FILE   also write a self-contained HTML page (inline CSS and SVG charts, no
                    script, nothing fetched) with the same numbers
      --json        print the summary as JSON instead of text
  -h, --help        print this help

Exit status: 0 done, 2 unreadable or malformed log.
";

const RECONCILE: &str = "\
Join an audit log with CloudTrail on Bedrock's request id and report what does not agree.

Usage: bedrock-guard reconcile --audit LOG --cloudtrail FILE... [--slack SECONDS] [--json]

CloudTrail FILEs are log files as a trail delivers them to S3 (`{\"Records\": [...]}`, gzip or
plain). Bedrock runtime events (eventSource bedrock.amazonaws.com, eventName InvokeModel,
Converse, ...) are joined on CloudTrail's requestID = the audit record's upstreamRequestId
(Bedrock's x-amzn-RequestId). Reported:
  - calls in CloudTrail the guard never saw (egress around the guard), with counts by
    principal, source IP and VPC endpoint;
  - calls the guard forwarded (records with an upstreamStatus: allowed, or denied in dry-run)
    that CloudTrail does not have, and forwarded records without an upstreamRequestId;
  - disagreements in operation, model (ARNs of base models and system profiles compared as
    their ids) or Region (awsRegion; an inferenceRegion elsewhere is accepted for
    cross-Region profiles and opaque ARNs only).
Only records inside the overlap of the two inputs' time ranges, shrunk by --slack at each end,
can be flagged as unseen or missing; the others are counted as not judged.

Options:
      --audit LOG         the audit log (`-`: stdin)
      --cloudtrail FILE   CloudTrail log files (one or more values; repeatable)
      --slack SECONDS     margin for CloudTrail's delivery delay and clock skew (default 300)
      --json              machine-readable output
  -h, --help              print this help

Exit status: 0 reconciled, 1 findings, 2 bad usage or input that cannot be read.
";
