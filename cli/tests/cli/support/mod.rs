//! Running the built `bedrock-guard` binary in a scratch directory.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

pub const BIN: &str = env!("CARGO_BIN_EXE_bedrock-guard");

/// A shipped example bundle or case file (`policies/examples/`, beside the engine).
pub fn example(name: &str) -> PathBuf {
    examples_dir().join(name)
}

/// `policies/examples/`: the demo and identity bundles and their cases.
pub fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/examples")
}

pub fn demo_text() -> String {
    std::fs::read_to_string(example("demo.json")).unwrap()
}

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// A scratch directory, removed when dropped.
pub struct Scratch {
    pub dir: PathBuf,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!(
            "bedrock-guard-cli-{tag}-{}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Write a file and return its path as a string.
    pub fn write(&self, name: &str, contents: &str) -> String {
        let p = self.path(name);
        std::fs::write(&p, contents).unwrap();
        p.to_string_lossy().into_owned()
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap()
    }

    pub fn run(&self, args: &[&str]) -> Output {
        run_in(&self.dir, args, None)
    }

    pub fn run_stdin(&self, args: &[&str], stdin: &str) -> Output {
        run_in(&self.dir, args, Some(stdin))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn run_in(dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Run in a fresh scratch directory.
pub fn run(args: &[&str]) -> Output {
    let s = Scratch::new("run");
    s.run(args)
}

/// The demo bundle rewritten as YAML (by hand, so the test does not depend on the CLI's own
/// converter).
pub const DEMO_YAML: &str = r#"# the demo bundle, in YAML
apiVersion: bedrock-guard/v1
kind: PolicyBundle
metadata:
  name: demo
  revision: "1"
mode: enforce
endpoints:
  - host: bedrock-runtime.us-east-1.amazonaws.com
    region: us-east-1
    private_dns: true
    cidrs: [127.0.0.0/8]
  - host: vpce-0a1b2c3d4e5f67890-abcd1234.bedrock-runtime.us-east-1.vpce.amazonaws.com
    region: us-east-1
accounts: ["123456789012"]
aws:
  principal_accounts: ["123456789012"]
resources:
  s3_outputs: ["s3://acme-bedrock-async/outputs/*"]
  guardrails: [gr0abc123, abc123xyz789]
credentials: { allow_bearer_api_keys: false }
limits:
  max_body_bytes: 1048576
rules:
  - id: claude-and-titan
    effect: allow
    models:
      - anthropic.claude-3-5-sonnet-20240620-v1:0
      - anthropic.claude-sonnet-4-*
      - us.anthropic.claude-*
      - amazon.titan-text-express-v1
      - openai.gpt-oss-20b-1:0
    operations: [Converse, ConverseStream, InvokeModel, InvokeModelWithResponseStream,
                 CountTokens, StartAsyncInvoke, ChatCompletions]
  - id: app-profile-by-arn
    effect: allow
    models: ["arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6"]
    operations: [Converse, InvokeModel]
  - id: guardrails
    effect: allow
    operations: [ApplyGuardrail, GetAsyncInvoke, ListAsyncInvokes]
  - id: no-global-profiles
    effect: deny
    models: ["global.*"]
  - id: no-opus
    effect: deny
    models: ["*claude-opus*"]
"#;
