//! `bedrock-guard`: validate, digest, sign, verify, explain and test policy bundles, and write
//! the ECDS resource Envoy watches. See `docs/cli.md`.

fn main() -> std::process::ExitCode {
    bedrock_guard_cli::main(std::env::args_os())
}
