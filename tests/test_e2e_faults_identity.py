"""Faults of the identity provider (issue 14, item 1): its JWKS endpoint down at start, slow,
answering garbage, and rotating keys while requests flow, through a real Envoy.

One Envoy (module-scoped, `--concurrency 2`, audit log on its own stdout file) in front of this
module's mock Bedrock, with the demo bundle whose Claude/Titan rule is limited to group `ml`,
and one remote-JWKS provider per fault, each with its own JWKS server (`harness/jwks_server.py`)
behind its own Envoy cluster, so the faults run side by side: `refresh_seconds` and
`max_stale_seconds` at their minimum (30 s), fetch timeout 5 s and at most one unknown-kid
fetch per provider per VM per 5 s (plugin/src/identity.rs).

Every test sends a mix through Envoy: valid tokens (allowed), a valid token for a refused model
or from a non-member (`model_not_allowed`), expired tokens, tokens signed by a wrong key under a
published kid (`bad_signature`), tokens naming the kid the fault is about, and requests without
a token (`identity_missing`); each answer must be exactly the expected one (nothing fails open:
no allowed answer for a token the keys in force do not vouch for) and the books are closed by
`harness/fault_traffic.Burst` (one audit record per request agreeing with its answer,
`harness/ledger.close_books`, Envoy's RSS growth under its bound, and the mock saw exactly the
allowed requests).

* `down` — the provider's port is closed when Envoy starts (every VM's first fetch is refused):
  its tokens are `policy_unavailable`, never accepted and never `unknown_key`, while the other
  providers work; the server then comes up on that port and (last tests) its tokens are
  accepted on every worker by the next scheduled fetch, within `refresh_seconds` of the failed
  one.
* `g-*` — after a good first fetch, each provider's server publishes a new key set (its old key
  removed, a new kid added) in a broken answer: an HTML 200, a 200 that is not JSON, JSON of the
  wrong shape (a bare key array; `keys` an object), a 500 carrying the new set, a truncated 200
  whose received bytes are the complete new set, a 200 padded past MAX_JWKS_BYTES, an empty 200,
  the new set plus a `kty: oct` shared secret, a 302 carrying the new set. Every worker
  fetches it (driven by new-kid tokens) and logs it as refused / failed / too large; the old
  keys stay in force (old tokens allowed, the new kid `unknown_key`); once the last good fetch is
  older than `max_stale_seconds` (last test) the old keys are dropped: `policy_unavailable`.
* `slow` — the server publishes a new set but answers 2 s after the 5 s fetch timeout: requests
  go on being decided at full speed (each well under a second) with the old keys while the fetch
  hangs, the late answer is never installed, and once the server is fast again the next
  unknown-kid fetch installs the new set (new kid allowed, the removed key refused).
* `rot` — keys rotate while four clients send continuously: set {A, C} becomes {B, C}. Before the
  new set is fetched A is allowed and B is `unknown_key`; once every worker logged the update, B
  is allowed and A refused; C (in both sets) is allowed throughout, and the JWKS fetches during
  the rotation stay within the unknown-kid rate limit.
"""

from __future__ import annotations

import concurrent.futures
import copy
import json
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import DEMO_BUNDLE, WASM_PATH
from tests.harness.audit_log import AuditLog
from tests.harness.envoy import (
    REPO_ROOT, EnvoyProcess, free_port, render_config, thread_log_lines,
)
from tests.harness.fault_traffic import Burst
from tests.harness.jwks_server import JwksServer, add_static_cluster
from tests.harness.mock_bedrock import MockBedrock
from tests.harness.pki import ensure_pki
from tests.harness.stack import envoy_stack
from tests.harness.tokens import SigningKey, claims

HEADER = "x-workload-identity"
AUDIENCE = "bedrock-egress"
JWKS_PATH = "/.well-known/jwks.json"
CLAUDE = "anthropic.claude-3-5-sonnet-20240620-v1:0"
LLAMA = "meta.llama3-8b-instruct-v1:0"  # no rule allows it: model_not_allowed

# policies/src/bundle validation: refresh_seconds >= 30, max_stale_seconds >= refresh_seconds.
REFRESH_SECONDS = 30
MAX_STALE_SECONDS = 30
# plugin/src/identity.rs
UNKNOWN_KID_MIN_INTERVAL = 5
FETCH_TIMEOUT = 5
WORKERS = 2  # envoy_stack runs --concurrency 2

UNAVAILABLE = "policy_unavailable: the identity provider's keys are unavailable"
UNKNOWN_KEY = "identity_invalid: unknown_key"
KEPT = "keeping the last good keys"


def is_(outcome: str, want: str) -> bool:
    """`outcome` is `want`: exactly, or (`want` being a bare reason such as `model_not_allowed`)
    a refusal with that reason and its explanation."""
    return outcome == want or (":" not in want and outcome.split(":")[0] == want)

# The broken answers (JwksServer fault modes) and how the filter logs each one.
GARBAGE = {
    "html": "refused",
    "not_json": "refused",
    "bare_array": "refused",
    "keys_object": "refused",
    "error_with_keys": "failed",
    "truncated": "failed",
    "oversize": "too large",
    "empty": "refused",
    "symmetric_key": "refused",
    "redirect": "failed",
}


@dataclass
class Provider:
    name: str
    old: SigningKey  # published from the start
    new: SigningKey  # published by the fault
    wrong: SigningKey = field(default=None)  # signs under old's kid: never a valid signature
    server: JwksServer | None = None
    port: int = 0

    def __post_init__(self):
        self.wrong = SigningKey.ec(self.old.kid)

    @property
    def issuer(self) -> str:
        return f"https://{self.name}.idp.test"

    @property
    def cluster(self) -> str:
        return f"jwks_{self.name.replace('-', '_')}"

    def token(self, key: SigningKey | None = None, *, groups=("ml",), expired=False) -> str:
        now = int(time.time())
        c = claims(self.issuer, AUDIENCE, f"svc-{self.name}", groups=list(groups),
                   **({"now": now - 700, "lifetime": 600} if expired else {}))
        key = key or self.old
        return key.mint(c) if key is not self.wrong else key.mint(c, kid=self.old.kid)


def _keys(name: str) -> tuple[SigningKey, SigningKey]:
    return SigningKey.ec(f"{name}-old"), SigningKey.ec(f"{name}-new")


PROVIDERS = {name: Provider(name, *_keys(name))
             for name in ["down", "slow", "rot", *(f"g-{m}" for m in GARBAGE)]}
ROT_C = SigningKey.ec("rot-steady")  # in both of rot's sets


def bundle() -> dict:
    doc = json.loads(Path(DEMO_BUNDLE).read_text())
    doc["metadata"]["name"] = "faults-identity"
    providers = []
    for p in PROVIDERS.values():
        providers.append({
            "name": p.name, "issuer": p.issuer, "audiences": [AUDIENCE], "algorithms": ["ES256"],
            "leeway_seconds": 5,
            "remote_jwks": {"cluster": p.cluster, "path": JWKS_PATH,
                            "refresh_seconds": REFRESH_SECONDS,
                            "max_stale_seconds": MAX_STALE_SECONDS}})
    doc["identity"] = {"header": HEADER, "providers": providers}
    rules = copy.deepcopy(doc["rules"])
    ml = [r for r in rules if r["id"] == "claude-and-titan"]
    assert len(ml) == 1 and CLAUDE in ml[0]["models"], "demo bundle changed"
    ml[0]["principals"] = {"groups": ["ml"]}
    doc["rules"] = rules
    return doc


# -- the stack --------------------------------------------------------------------------------

class Stack:
    def __init__(self, envoy: EnvoyProcess, audit: AuditLog, mock: MockBedrock, started: float):
        self.envoy = envoy
        self.audit = audit
        self.mock = mock
        self.started = started  # time.monotonic() just before Envoy started

    def burst(self, tag: str) -> Burst:
        return Burst(self.envoy, self.audit, tag)

    def app_log(self) -> str:
        return self.envoy.app_log_path.read_bytes().decode(errors="replace")

    def log_offset(self) -> int:
        return self.envoy.app_log_path.stat().st_size

    def main_thread(self) -> str:
        threads = {t for t, _ in self.log_lines(0, "][main]")}
        assert len(threads) == 1, threads
        return threads.pop()

    def log_lines(self, offset: int, needle: str) -> list[tuple[str, str]]:
        """(thread id, line) of application log lines after byte `offset` containing `needle`."""
        return thread_log_lines(self.envoy.app_log_path, offset, needle)

    def workers_logged(self, offset: int, needle: str) -> set[str]:
        return {t for t, _ in self.log_lines(offset, needle)} - {self.main_thread()}


def log_time(line: str) -> float:
    """The epoch time of an Envoy log line (`[%Y-%m-%d %T.%e]`, local time)."""
    stamp = re.match(r"\[([^\]]+)\]", line).group(1)
    whole, _, millis = stamp.partition(".")
    return time.mktime(time.strptime(whole, "%Y-%m-%d %H:%M:%S")) + int(millis) / 1000


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    pki = ensure_pki(REPO_ROOT / ".build" / "pki")
    work = tmp_path_factory.mktemp("faults-identity")
    mock = MockBedrock(pki_dir=pki).start()
    try:
        for p in PROVIDERS.values():
            if p.name == "down":
                p.port = free_port()  # nothing listens there when Envoy starts
                p.server = JwksServer(JWKS_PATH, port=p.port)
                p.server.set_keys([p.old.jwk()])
                continue
            p.server = JwksServer(JWKS_PATH).start()
            p.port = p.server.port
            p.server.set_keys([p.old.jwk()] + ([ROT_C.jwk()] if p.name == "rot" else []))
        listener, admin = free_port(), free_port()
        cfg = render_config(listener, admin, mock.port, pki, WASM_PATH, bundle(), out_dir=work)
        for p in PROVIDERS.values():
            add_static_cluster(cfg, p.cluster, p.port)
        started = time.monotonic()
        with envoy_stack(cfg, admin, listener, work, split_logs=True) as envoy:
            yield Stack(envoy, AuditLog(envoy.log_path), mock, started)
    finally:
        for p in PROVIDERS.values():
            if p.server is not None:
                p.server.stop()
        mock.stop()


def wait_until(predicate, timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def drive_fetches(stack: Stack, burst: Burst, providers: list[Provider], offset: int,
                  needle_of, timeout: float) -> dict[str, set[str]]:
    """Send tokens naming each provider's new kid (each asks its VM for a rate-limited JWKS
    fetch) until every worker has logged `needle_of(provider)` after `offset`. Until then such a
    token must be `unknown_key`. Returns the workers that logged it, per provider."""
    deadline = time.monotonic() + timeout
    done: dict[str, set[str]] = {p.name: set() for p in providers}
    while time.monotonic() < deadline:
        pending = [p for p in providers if len(done[p.name]) < WORKERS]
        if not pending:
            break
        for p in pending:
            sent = burst.send(CLAUDE, p.token(p.new), label="new-kid")
            assert sent.outcome == UNKNOWN_KEY, (p.name, sent)
            done[p.name] = stack.workers_logged(offset, needle_of(p))
        time.sleep(0.15)
    return done


def mixed(burst: Burst, p: Provider, *, valid: str, new_kid: str, rounds: int = 2) -> None:
    """The mix for provider `p`, with the outcomes expected for a valid old-key token and for a
    token naming the new kid; the rest is what the keys in force make of it."""
    old_expired = valid if valid != "allowed" else "identity_invalid: expired"
    wrong_key = valid if valid != "allowed" else "identity_invalid: bad_signature"
    refused_model = valid if valid != "allowed" else "model_not_allowed"
    for _ in range(rounds):
        cases = [
            (CLAUDE, p.token(), valid, "valid"),
            (CLAUDE, p.token(), valid, "valid"),
            (LLAMA, p.token(), refused_model, "refused-model"),
            (CLAUDE, p.token(groups=["dev"]), refused_model, "non-member"),
            (CLAUDE, p.token(p.new), new_kid, "new-kid"),
            (CLAUDE, p.token(expired=True), old_expired, "expired"),
            (CLAUDE, p.token(p.wrong), wrong_key, "wrong-key"),
            (CLAUDE, None, "identity_missing", "missing"),
        ]
        for model, token, want, label in cases:
            sent = burst.send(model, token, label=label)
            assert is_(sent.outcome, want), (p.name, label, sent)


# -- 1. down at start (first half) -------------------------------------------------------------

def test_jwks_down_at_start_refuses_its_tokens_as_unavailable(stack):
    down = PROVIDERS["down"]
    rot = PROVIDERS["rot"]
    # Every VM tried once and was refused a connection.
    assert wait_until(lambda: len(stack.workers_logged(0, "JWKS fetch for provider down failed"))
                      >= WORKERS, timeout=5), stack.app_log()[-2000:]
    burst = stack.burst("down")
    for _ in range(3):
        for token, label in [(down.token(), "valid"), (down.token(down.wrong), "wrong-key"),
                             (down.token(expired=True), "expired"),
                             (down.token(groups=["dev"]), "non-member")]:
            sent = burst.send(CLAUDE, token, label=label)
            # No key at all: whatever the token, the provider cannot vouch; never accepted and
            # never mistaken for a token with an unknown key.
            assert sent.outcome == UNAVAILABLE, (label, sent)
        assert is_(burst.send(CLAUDE, None, label="missing").outcome, "identity_missing")
        # A down provider does not disturb the others.
        assert burst.send(CLAUDE, rot.token(ROT_C), label="other").outcome == "allowed"
        assert is_(burst.send(LLAMA, rot.token(ROT_C), label="other").outcome,
                   "model_not_allowed")
    burst.close(stack.mock)
    assert not down.server.running
    down.server.start()  # the provider comes up; picked up by the next scheduled fetch


# -- 2. garbage -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def garbage_served(stack):
    """Every `g-*` server switches to its broken answer carrying a new set (old key removed, new
    kid added); new-kid tokens drive every worker to fetch it. Returns (per provider, the
    workers that logged it; the log offset)."""
    providers = [PROVIDERS[f"g-{m}"] for m in GARBAGE]
    # Every VM's first fetch was good.
    assert wait_until(lambda: all(len(stack.workers_logged(0, f"JWKS of provider {p.name} "
                                                              "updated")) >= WORKERS
                                  for p in providers), timeout=5), stack.app_log()[-3000:]
    offset = stack.log_offset()
    for mode, p in zip(GARBAGE, providers):
        p.server.set_keys([p.new.jwk()])
        p.server.mode = mode
    since = time.monotonic()
    burst = stack.burst("garbage-drive")
    done = drive_fetches(stack, burst, providers, offset,
                         lambda p: f"provider {p.name} ", timeout=3 * UNKNOWN_KID_MIN_INTERVAL)
    burst.close(stack.mock)
    missing = {n: w for n, w in done.items() if len(w) < WORKERS}
    assert not missing, f"workers that never fetched the broken answer: {missing}"
    for p in providers:
        assert p.server.fetches(since=since, mode=p.server.mode), p.name
    return offset


@pytest.mark.parametrize("mode", list(GARBAGE))
def test_garbage_jwks_keeps_the_keys_in_force_and_never_lets_a_bad_token_pass(stack,
                                                                             garbage_served,
                                                                             mode):
    p = PROVIDERS[f"g-{mode}"]
    lines = stack.log_lines(garbage_served, f"provider {p.name} ")
    assert lines, p.name
    for _, line in lines:
        # How the filter saw it (e.g. a 500 is a failed fetch, not a parsed document), and that
        # it kept the last good keys; never "updated".
        assert GARBAGE[mode] in line and KEPT in line, line
    burst = stack.burst(f"garbage-{mode}")
    mixed(burst, p, valid="allowed", new_kid=UNKNOWN_KEY)
    burst.close(stack.mock)


# -- 3. slow ------------------------------------------------------------------------------------

def test_slow_jwks_never_slows_requests_and_its_late_answer_is_never_installed(stack):
    p = PROVIDERS["slow"]
    p.server.set_keys([p.new.jwk()])  # old removed, new published...
    p.server.delay = FETCH_TIMEOUT + 2  # ...by a server slower than the fetch timeout
    p.server.mode = "slow"
    offset = stack.log_offset()
    since = time.monotonic()
    burst = stack.burst("slow")
    needle = "JWKS fetch for provider slow failed"
    # While the fetches hang, the mix is decided with the old keys, each answer at full speed.
    while len(stack.workers_logged(offset, needle)) < WORKERS:
        assert time.monotonic() - since < UNKNOWN_KID_MIN_INTERVAL + FETCH_TIMEOUT + 5, \
            stack.app_log()[-2000:]
        mixed(burst, p, valid="allowed", new_kid=UNKNOWN_KEY, rounds=1)
        time.sleep(0.25)  # a few hundred requests in all
    slow_fetches = p.server.fetches(since=since, mode="slow")
    assert slow_fetches, "the slow server was never asked"
    asked = [f.wall for f in slow_fetches]
    for _, line in stack.log_lines(offset, needle):
        # Each VM gave up after its fetch timeout, not when the server answered.
        t = log_time(line)
        assert any(FETCH_TIMEOUT - 0.5 <= t - f <= FETCH_TIMEOUT + 1.5 for f in asked), \
            (line, [round(t - f, 2) for f in asked])
    worst = max(s.seconds for s in burst.sent)
    print(f"\nslow JWKS: {len(burst.sent)} requests while fetches hung, slowest {worst:.3f}s")
    assert worst < 1.0, sorted(s.seconds for s in burst.sent)[-5:]
    # Let every late answer go out (into a closed stream), then: still the old keys.
    last = max(f.at for f in p.server.fetches(since=since, mode="slow"))
    time.sleep(max(0.0, last + p.server.delay + 0.3 - time.monotonic()))
    mixed(burst, p, valid="allowed", new_kid=UNKNOWN_KEY, rounds=1)
    # Fast again: the next unknown-kid fetch installs the new set on every worker.
    p.server.mode = "ok"
    fast = time.monotonic()
    fast_offset = stack.log_offset()
    updated = f"JWKS of provider {p.name} updated"
    # New-kid tokens drive each worker to fetch (an unknown kid: at most one fetch per worker per
    # 5 s). Connections land on either worker, so a run of allowed answers can all come from one
    # of them: wait until every worker has logged the new set.
    while len(stack.workers_logged(fast_offset, updated)) < WORKERS:
        assert time.monotonic() - fast < UNKNOWN_KID_MIN_INTERVAL + 4, \
            "new key never installed on every worker: " + stack.app_log()[-2000:]
        sent = burst.send(CLAUDE, p.token(p.new), label="new-kid")
        assert sent.outcome in ("allowed", UNKNOWN_KEY), sent
        time.sleep(0.1)
    for _ in range(8):
        assert burst.send(CLAUDE, p.token(p.new), label="new-kid").outcome == "allowed"
    # The removed key's tokens are refused now; nothing else changed.
    for _ in range(4):
        assert burst.send(CLAUDE, p.token(), label="removed").outcome == UNKNOWN_KEY
        assert is_(burst.send(CLAUDE, None, label="missing").outcome, "identity_missing")
        assert is_(burst.send(LLAMA, p.token(p.new), label="refused-model").outcome,
                   "model_not_allowed")
    burst.close(stack.mock)


# -- 4. rotation during traffic -------------------------------------------------------------------

def test_keys_rotating_during_traffic(stack):
    p = PROVIDERS["rot"]  # set {old (A), C} -> {new (B), C}
    a, b = p.old, p.new
    burst = stack.burst("rot")
    stop = threading.Event()
    published = [0.0]  # time.time() when {B, C} was published

    def client(i: int) -> None:
        cases = [(CLAUDE, lambda: p.token(a), "A"), (CLAUDE, lambda: p.token(b), "B"),
                 (CLAUDE, lambda: p.token(ROT_C), "C"),
                 (CLAUDE, lambda: p.token(ROT_C, expired=True), "C-expired"),
                 (LLAMA, lambda: p.token(ROT_C), "C-refused-model"),
                 (CLAUDE, lambda: None, "missing")]
        n = i
        while not stop.is_set():
            model, token, label = cases[n % len(cases)]
            burst.send(model, token(), label=label)
            n += 1
            time.sleep(0.08)  # four clients, a few hundred requests in all

    offset = stack.log_offset()
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        running = [pool.submit(client, i) for i in range(4)]
        time.sleep(1.0)
        published[0] = time.time()
        p.server.set_keys([b.jwk(), ROT_C.jwk()])
        rotated = time.monotonic()
        updated = wait_until(lambda: len(stack.workers_logged(offset, "JWKS of provider rot "
                                                                      "updated")) >= WORKERS,
                             timeout=UNKNOWN_KID_MIN_INTERVAL + 5)
        time.sleep(1.0)  # traffic on the new set
        stop.set()
        for f in running:
            f.result()
    assert updated, stack.app_log()[-2000:]
    window = time.monotonic() - start
    # When the last worker installed the new set (the main thread's VM serves no request; its
    # scheduled refresh may log its own update later).
    main = stack.main_thread()
    last_update = max(log_time(line) for thread, line in
                      stack.log_lines(offset, "JWKS of provider rot updated") if thread != main)
    before = [s for s in burst.sent if s.at + s.seconds < published[0]]
    after = [s for s in burst.sent if s.at > last_update + 0.05]
    print(f"\nrotation: {len(burst.sent)} requests, {len(before)} before the new set, "
          f"{len(after)} after every worker installed it "
          f"({last_update - published[0]:.2f}s after publishing)")
    assert before and after
    expect_always = {"C": "allowed", "C-expired": "identity_invalid: expired",
                     "C-refused-model": "model_not_allowed", "missing": "identity_missing"}
    for s in burst.sent:
        if s.label in expect_always:
            assert is_(s.outcome, expect_always[s.label]), s
        else:
            assert s.outcome in ("allowed", UNKNOWN_KEY), s
    for s in before:
        assert s.outcome == {"A": "allowed", "B": UNKNOWN_KEY}.get(s.label, s.outcome), s
    for s in after:
        assert s.outcome == {"A": UNKNOWN_KEY, "B": "allowed"}.get(s.label, s.outcome), s
    assert {s.label for s in after} >= {"A", "B"}
    # The rotation was picked up by unknown-kid fetches, each VM at most once per
    # UNKNOWN_KID_MIN_INTERVAL (plus at most one scheduled refresh per root context).
    fetches = len(p.server.fetches(since=rotated))
    bound = WORKERS * (int(window // UNKNOWN_KID_MIN_INTERVAL) + 1) + WORKERS + 2
    assert 1 <= fetches <= bound, (fetches, bound)
    burst.close(stack.mock)


# -- 5. down at start (second half): comes up, picked up on schedule ---------------------------

def test_jwks_down_at_start_is_picked_up_within_the_refresh_schedule(stack):
    down = PROVIDERS["down"]
    if not down.server.running:  # run on its own (-k): the first half did not start it
        down.server.start()
    failed: dict[str, float] = {}  # per thread (VM): its first, refused, fetch
    for thread, line in stack.log_lines(0, "JWKS fetch for provider down failed"):
        failed.setdefault(thread, log_time(line))
    # Each VM retries on its own schedule: refresh_seconds after its own failed fetch (the
    # timer counts whole seconds, so up to one tick later).
    due = max(failed.values()) + REFRESH_SECONDS + 1
    deadline = time.monotonic() + max(0.0, due + 4 - time.time())
    burst = stack.burst("down-up")
    streak = 0
    while streak < 8:
        assert time.monotonic() < deadline, (
            f"tokens of the down provider not accepted {REFRESH_SECONDS}s after every VM's "
            f"failed fetch: {[s.outcome for s in burst.sent[-5:]]}")
        sent = burst.send(CLAUDE, down.token(), label="valid")
        assert sent.outcome in (UNAVAILABLE, "allowed"), sent
        streak = streak + 1 if sent.outcome == "allowed" else 0
        if streak == 0:
            time.sleep(0.25)
    updates = stack.log_lines(0, "JWKS of provider down updated")
    workers = {t for t, _ in updates} - {stack.main_thread()}
    assert len(workers) == WORKERS, updates
    for thread, line in [(t, line) for t, line in updates if t in workers]:
        # The retry came from the schedule: refresh_seconds after that VM's refused fetch, not
        # earlier (no fetch on demand while the keys are unavailable), not much later.
        waited = log_time(line) - failed[thread]
        assert REFRESH_SECONDS - 1.5 <= waited <= REFRESH_SECONDS + 2.5, (waited, line)
    assert down.server.fetches(mode="ok")
    mixed(burst, down, valid="allowed", new_kid=UNKNOWN_KEY, rounds=1)
    burst.close(stack.mock)


# -- 6. garbage past max staleness ------------------------------------------------------------------

def test_garbage_keys_are_kept_only_until_max_staleness(stack, garbage_served):
    providers = [PROVIDERS[f"g-{m}"] for m in GARBAGE]
    # The last good fetch of the g-* providers was Envoy's start; past max_stale_seconds (and
    # the 1 s tick) every VM drops their keys.
    wait = stack.started + MAX_STALE_SECONDS + 3 - time.monotonic()
    print(f"\nstaleness: waiting {max(wait, 0):.1f}s")
    time.sleep(max(0.0, wait))
    assert wait_until(lambda: all(len(stack.workers_logged(garbage_served,
                                                            f"JWKS of provider {p.name} is stale"))
                                  >= WORKERS for p in providers), timeout=3)
    burst = stack.burst("stale")
    for p in providers:
        mixed(burst, p, valid=UNAVAILABLE, new_kid=UNAVAILABLE, rounds=1)
    burst.close(stack.mock)
