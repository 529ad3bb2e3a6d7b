"""The bundle shipped inline in envoy/demo.yaml is the example bundle, not a drifted copy."""

import json

from tests.harness.envoy import DEMO_CONFIG, REPO_ROOT, embedded_bundle


def test_demo_yaml_embeds_the_demo_bundle():
    expected = json.loads((REPO_ROOT / "policies" / "examples" / "demo.json").read_text())
    assert embedded_bundle(DEMO_CONFIG) == expected
