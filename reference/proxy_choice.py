"""The proxy huggingface_hub's HTTP client (httpx2, trust_env) picks for each address under an environment, for
HubProxyTests: the environment's proxy variables as urllib reads them, then httpx's mounts, most specific first.

usage: proxy_choice.py CASES.json   where CASES.json is [{"env": {NAME: VALUE}, "urls": [URL, …]}, …]
Prints one JSON list per case: for each URL the proxy address, or null for a direct connection."""
import json
import os
import sys

import httpx2
from httpx2._utils import URLPattern, get_environment_proxies

cases = json.load(open(sys.argv[1]))
answers = []
for case in cases:
    for name in [n for n in os.environ if n.lower().endswith("_proxy")]:
        del os.environ[name]
    os.environ.update(case["env"])
    # As httpx2.Client(trust_env=True) builds its mounts (_get_proxy_map, then sorted) and _transport_for_url.
    mounts = dict(sorted({URLPattern(key): value for key, value in get_environment_proxies().items()}.items()))
    row = []
    for url in case["urls"]:
        chosen = next((value for pattern, value in mounts.items() if pattern.matches(httpx2.URL(url))), None)
        row.append(chosen)
    answers.append(row)
print(json.dumps(answers))
