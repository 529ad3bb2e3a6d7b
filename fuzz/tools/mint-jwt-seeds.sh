#!/usr/bin/env bash
# Mint the JWT seed corpus (fuzz/seeds/jwt/) from the engine's committed test-only fixture keys
# (policies/tests/fixtures/identity/). One file per attack class, no trailing newline.
#
# The three `valid_*` tokens are the only ones `identity::verify` may accept (the `jwt` target
# asserts it, with its fixed clock JWT_NOW = 1_800_000_000). They expire on 2100-01-01.
# RSA PKCS#1 v1.5 signatures are deterministic; ES256 ones are not (random nonce), so an existing
# `valid_*` file is kept unless MINT_FORCE=1: a re-minted valid token that differs from the one
# already in someone's scratch corpus would make the old one (still valid) trip the oracle.
#
#   fuzz/tools/mint-jwt-seeds.sh        (needs openssl and coreutils' basenc)
set -euo pipefail
cd "$(dirname "$0")/.."
keys=../policies/tests/fixtures/identity
out=seeds/jwt
mkdir -p "$out"

ISS_A=https://idp-a.example
ISS_B=https://idp-b.example
AUD=bedrock-egress
SUB=spiffe://cluster.local/ns/ml/sa/trainer
IAT=1799999940       # JWT_NOW - 60
EXP=4102444800       # 2100-01-01T00:00:00Z

b64() { basenc --base64url -w0 | tr -d '='; }
rs256() { openssl dgst -sha256 -sign "$keys/$1" -binary | b64; }
# ES256: DER ECDSA-Sig-Value -> raw r || s (32 bytes each), as JWS wants (RFC 7518 §3.4).
es256() {
  local der ints r s
  der=$(mktemp)
  openssl dgst -sha256 -sign "$keys/$1" -binary >"$der"
  ints=$(openssl asn1parse -inform DER -in "$der" | awk -F: '/INTEGER/ {print $NF}')
  rm -f "$der"
  r=$(sed -n 1p <<<"$ints"); s=$(sed -n 2p <<<"$ints")
  pad() { local h=${1#00}; h=${h#00}; printf '%064s' "$h" | tr ' ' 0; }
  printf '%s%s' "$(pad "$r")" "$(pad "$s")" | xxd -r -p | b64
}
# token HEADER_JSON CLAIMS_JSON SIGNER KEY: signs exactly these JSON bytes.
token() {
  local msg
  msg="$(printf '%s' "$1" | b64).$(printf '%s' "$2" | b64)"
  printf '%s.%s' "$msg" "$(printf '%s' "$msg" | "$3" "$4")"
}
seed() { printf '%s' "$2" >"$out/$1"; }
valid_seed() {
  if [ -s "$out/$1" ] && [ "${MINT_FORCE:-0}" != 1 ]; then return; fi
  seed "$1" "$2"
}

hdr_rsa="{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"rsa-a-1\"}"
claims="{\"iss\":\"$ISS_A\",\"aud\":\"$AUD\",\"sub\":\"$SUB\",\"iat\":$IAT,\"exp\":$EXP}"
claims_b="{\"iss\":\"$ISS_B\",\"aud\":\"$AUD\",\"sub\":\"$SUB\",\"iat\":$IAT,\"exp\":$EXP}"
valid=$(token "$hdr_rsa" "$claims" rs256 rsa_a.key.pem)

# The accepted ones.
valid_seed valid_rs256 "$valid"
valid_seed valid_es256 "$(token '{"alg":"ES256","typ":"JWT","kid":"ec-a-1"}' "$claims" es256 ec_p256.key.pem)"
valid_seed valid_rs256_issuer_b "$(token '{"alg":"RS256","kid":"rsa-b-1"}' "$claims_b" rs256 rsa_b.key.pem)"

# Algorithm attacks.
seed alg_none "$(printf '%s' '{"alg":"none","kid":"rsa-a-1"}' | b64).$(printf '%s' "$claims" | b64)."
seed alg_none_mixed_case "$(printf '%s' '{"alg":"nOnE","typ":"JWT","kid":"rsa-a-1"}' | b64).$(printf '%s' "$claims" | b64)."
hs_msg="$(printf '%s' '{"alg":"HS256","typ":"JWT","kid":"rsa-a-1"}' | b64).$(printf '%s' "$claims" | b64)"
hs_key=$(xxd -p "$keys/rsa_a.pub.pem" | tr -d '\n')
seed hs256_confusion "$hs_msg.$(printf '%s' "$hs_msg" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$hs_key" -binary | b64)"
seed alg_mismatch_es256_on_rsa_key "$(token '{"alg":"ES256","kid":"rsa-a-1"}' "$claims" es256 ec_p256.key.pem)"
seed psychic_signature "$(printf '%s' '{"alg":"ES256","kid":"ec-a-1"}' | b64).$(printf '%s' "$claims" | b64).$(head -c 64 /dev/zero | b64)"

# Header parameters that must never be trusted or that RFC 7515 says to refuse (validly signed).
seed jku "$(token '{"alg":"RS256","kid":"rsa-a-1","jku":"https://evil.example/jwks.json"}' "$claims" rs256 rsa_a.key.pem)"
seed x5u "$(token '{"alg":"RS256","kid":"rsa-a-1","x5u":"https://evil.example/cert.pem"}' "$claims" rs256 rsa_a.key.pem)"
seed jwk_embedded "$(token "{\"alg\":\"RS256\",\"kid\":\"rsa-a-1\",\"jwk\":$(cat "$keys/rsa_b.jwk.json" | tr -d ' \n')}" "$claims" rs256 rsa_b.key.pem)"
seed x5c "$(token '{"alg":"RS256","kid":"rsa-a-1","x5c":["MIIB"]}' "$claims" rs256 rsa_a.key.pem)"
seed crit "$(token '{"alg":"RS256","kid":"rsa-a-1","crit":["exp-ext"],"exp-ext":1}' "$claims" rs256 rsa_a.key.pem)"
seed b64_false "$(token '{"alg":"RS256","kid":"rsa-a-1","b64":false,"crit":["b64"]}' "$claims" rs256 rsa_a.key.pem)"
seed typ_wrong "$(token '{"alg":"RS256","typ":"JWE","kid":"rsa-a-1"}' "$claims" rs256 rsa_a.key.pem)"
seed kid_traversal "$(token '{"alg":"RS256","kid":"../../../../dev/null"}' "$claims" rs256 rsa_a.key.pem)"
seed kid_cross_issuer "$(token '{"alg":"RS256","kid":"rsa-b-1"}' "$claims" rs256 rsa_b.key.pem)"
seed kid_missing "$(token '{"alg":"RS256"}' "$claims" rs256 rsa_a.key.pem)"

# Encoding: padding, std alphabet, whitespace, shape, non-canonical trailing bits.
IFS=. read -r h p s <<<"$valid"
seed padded "$h==.$p=.$s=="
seed std_alphabet "$(tr -- '-_' '+/' <<<"$valid" | tr -d '\n')"
seed whitespace "$h. $p.$s"
seed trailing_newline "$valid
"
seed jwe_five_segments "$h.$p.$s.$s.$s"
seed two_segments "$h.$p"
seed empty_signature "$h.$p."
# Same decoded bytes, but a non-zero unused low bit in the last character (not canonical).
B64URL=ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_
dirty_tail() {
  local seg=$1 idx unused
  case $(( ${#seg} % 4 )) in
    2) unused=15 ;;   # last character: 2 data bits, 4 unused
    3) unused=3 ;;    # last character: 4 data bits, 2 unused
    *) echo "segment length leaves no unused bits" >&2; exit 1 ;;
  esac
  idx=$(expr index "$B64URL" "${seg: -1}"); idx=$((idx - 1))
  printf '%s%s' "${seg%?}" "${B64URL:$(( (idx & ~unused) | 1 )):1}"
}
seed signature_trailing_bits "$h.$p.$(dirty_tail "$s")"
seed payload_trailing_bits "$h.$(dirty_tail "$p").$s"

# Claims type confusion and time (validly signed, so only the claim is wrong).
sign_a() { token "$hdr_rsa" "$1" rs256 rsa_a.key.pem; }
seed exp_string "$(sign_a "{\"iss\":\"$ISS_A\",\"aud\":\"$AUD\",\"sub\":\"$SUB\",\"exp\":\"$EXP\"}")"
seed nbf_string "$(sign_a "{\"iss\":\"$ISS_A\",\"aud\":\"$AUD\",\"sub\":\"$SUB\",\"exp\":$EXP,\"nbf\":\"4102444800\"}")"
seed exp_missing "$(sign_a "{\"iss\":\"$ISS_A\",\"aud\":\"$AUD\",\"sub\":\"$SUB\"}")"
seed expired "$(sign_a "{\"iss\":\"$ISS_A\",\"aud\":\"$AUD\",\"sub\":\"$SUB\",\"exp\":1799999000}")"
seed exp_negative "$(sign_a "{\"iss\":\"$ISS_A\",\"aud\":\"$AUD\",\"sub\":\"$SUB\",\"exp\":-1}")"
seed exp_huge_float "$(sign_a "{\"iss\":\"$ISS_A\",\"aud\":\"$AUD\",\"sub\":\"$SUB\",\"exp\":1e300}")"
seed nbf_future "$(sign_a "{\"iss\":\"$ISS_A\",\"aud\":\"$AUD\",\"sub\":\"$SUB\",\"exp\":$EXP,\"nbf\":4000000000}")"
seed iss_array "$(sign_a "{\"iss\":[\"https://evil.example\",\"$ISS_A\"],\"aud\":\"$AUD\",\"sub\":\"$SUB\",\"exp\":$EXP}")"
seed iss_unknown "$(sign_a "{\"iss\":\"https://evil.example\",\"aud\":\"$AUD\",\"sub\":\"$SUB\",\"exp\":$EXP}")"
seed aud_missing "$(sign_a "{\"iss\":\"$ISS_A\",\"sub\":\"$SUB\",\"exp\":$EXP}")"
seed aud_object "$(sign_a "{\"iss\":\"$ISS_A\",\"aud\":{\"x\":\"$AUD\"},\"sub\":\"$SUB\",\"exp\":$EXP}")"
seed sub_empty "$(sign_a "{\"iss\":\"$ISS_A\",\"aud\":\"$AUD\",\"sub\":\"\",\"exp\":$EXP}")"
seed groups_object "$(sign_a "{\"iss\":\"$ISS_A\",\"aud\":\"$AUD\",\"sub\":\"$SUB\",\"exp\":$EXP,\"groups\":{\"a\":1}}")"
seed lifetime_too_long_issuer_b "$(token '{"alg":"RS256","kid":"rsa-b-1"}' "{\"iss\":\"$ISS_B\",\"aud\":\"$AUD\",\"sub\":\"$SUB\",\"iat\":0,\"exp\":$EXP}" rs256 rsa_b.key.pem)"

# Strict JSON: duplicates (also after escape decoding), nesting, not an object.
seed duplicate_header_alg "$(token '{"alg":"RS256","kid":"rsa-a-1","alg":"none"}' "$claims" rs256 rsa_a.key.pem)"
seed escaped_duplicate_alg "$(token '{"alg":"RS256","kid":"rsa-a-1","\u0061lg":"none"}' "$claims" rs256 rsa_a.key.pem)"
seed duplicate_claim_sub "$(sign_a "{\"iss\":\"$ISS_A\",\"aud\":\"$AUD\",\"sub\":\"$SUB\",\"exp\":$EXP,\"sub\":\"admin\"}")"
seed deep_nesting "$(sign_a "{\"iss\":\"$ISS_A\",\"aud\":\"$AUD\",\"sub\":\"$SUB\",\"exp\":$EXP,\"x\":$(printf '[%.0s' {1..200})$(printf ']%.0s' {1..200})}")"
seed claims_not_object "$(token "$hdr_rsa" '["iss"]' rs256 rsa_a.key.pem)"
seed lone_surrogate "$(sign_a "{\"iss\":\"$ISS_A\",\"aud\":\"$AUD\",\"sub\":\"\\ud800\",\"exp\":$EXP}")"

echo "minted $(ls "$out" | wc -l) seeds in fuzz/$out"
