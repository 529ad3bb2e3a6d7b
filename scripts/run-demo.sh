#!/usr/bin/env bash
# `make run`: the mock Bedrock upstream and Envoy with the filter, on loopback, until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}
ENVOY=${ENVOY:-.venv/bin/envoy}
LISTEN=127.0.0.1:10000
ADMIN=http://127.0.0.1:9901
mkdir -p .build/run

pids=()
stop() {
  trap - INT TERM EXIT
  echo
  echo "stopping Envoy and the mock Bedrock..."
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "stopped."
}
trap 'stop; exit 0' INT TERM
trap stop EXIT

"$PY" -m tests.harness.mock_bedrock --host 127.0.0.1 --port 8443 --pki .build/pki \
  >.build/run/mock.log 2>&1 &
pids+=($!)
"$ENVOY" -c envoy/demo.yaml --concurrency 2 --log-level info --base-id 41 \
  >.build/run/envoy.log 2>&1 &
pids+=($!)

for _ in $(seq 1 100); do
  if curl -fsS "$ADMIN/ready" >/dev/null 2>&1; then break; fi
  if ! kill -0 "${pids[1]}" 2>/dev/null; then
    echo "Envoy exited; its log (.build/run/envoy.log):"; tail -30 .build/run/envoy.log; exit 1
  fi
  sleep 0.2
done
curl -fsS "$ADMIN/ready" >/dev/null || { echo "Envoy not ready; see .build/run/envoy.log"; exit 1; }

cat <<MSG

bedrock-guard is running: Envoy on $LISTEN (admin $ADMIN), the filter with the bundle
policies/examples/demo.json, and a mock Bedrock (verifies SigV4) on 127.0.0.1:8443.
Logs: .build/run/envoy.log (audit records: one JSON line per request), .build/run/mock.log
Stats: curl -s $ADMIN/stats?filter=bedrock_guard

An application needs no code change, only two settings (fake example credentials here):

  AWS_ENDPOINT_URL_BEDROCK_RUNTIME=http://bedrock-runtime.us-east-1.amazonaws.com
  HTTP_PROXY=http://$LISTEN

1) An allowed model, with boto3:
   $PY scripts/demo-client.py anthropic.claude-3-5-sonnet-20240620-v1:0
MSG
"$PY" scripts/demo-client.py anthropic.claude-3-5-sonnet-20240620-v1:0 | sed 's/^/   -> /' || true
cat <<MSG

2) A model the bundle does not allow, with boto3:
   $PY scripts/demo-client.py meta.llama3-8b-instruct-v1:0
MSG
"$PY" scripts/demo-client.py meta.llama3-8b-instruct-v1:0 | sed 's/^/   -> /' || true
cat <<MSG

3) The same refusal with curl (no signature needed to be refused):
   curl -s -x http://$LISTEN -H 'content-type: application/json' -d '{}' \\
     http://bedrock-runtime.us-east-1.amazonaws.com/model/meta.llama3-8b-instruct-v1%3A0/converse
MSG
printf '   -> '
curl -s -x "http://$LISTEN" -H 'content-type: application/json' -d '{}' \
  "http://bedrock-runtime.us-east-1.amazonaws.com/model/meta.llama3-8b-instruct-v1%3A0/converse" || true
echo
echo
echo "Press Ctrl-C to stop."
wait
