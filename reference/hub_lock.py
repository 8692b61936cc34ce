"""Holds huggingface_hub's own lock on one blob of a cache, as hf_hub_download does while it writes that blob
(file_download.py: WeakFileLock on CACHE/.locks/<repo folder>/<etag>.lock), for HubLockTests.

usage: hub_lock.py CACHE REPO ETAG SECONDS
Prints the lock's path, takes the lock, prints "locked", holds it SECONDS, then prints one JSON object: whether the
blob or its .incomplete existed at the end of the hold, and releases it."""
import json
import os
import sys
import time

from huggingface_hub.file_download import repo_folder_name
from huggingface_hub.utils._fixes import WeakFileLock

cache, repo, etag, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
folder = repo_folder_name(repo_id=repo, repo_type="model")
lock_path = os.path.join(cache, ".locks", folder, f"{etag}.lock")
blob = os.path.join(cache, folder, "blobs", etag)
os.makedirs(os.path.dirname(lock_path), exist_ok=True)
print(lock_path, flush=True)
with WeakFileLock(lock_path):
    print("locked", flush=True)
    time.sleep(seconds)
    print(json.dumps({"blob": os.path.exists(blob), "incomplete": os.path.exists(blob + ".incomplete")}), flush=True)
