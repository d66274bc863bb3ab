"""Initial data file of the test TAXII server (medallion + persistent_backend.py).

Usage: make_data.py BASE_URL RW_COLLECTION_ID RO_COLLECTION_ID SMALL_COLLECTION_ID > data.json

One discovery resource and two API roots, no objects:
- api1 (max_content_length 10 MB): RW_COLLECTION (read-write: incidents from the forwarder,
  indicators for the inbound path) and RO_COLLECTION (read-only: a write is refused with 403);
- small (max_content_length 2048 bytes): SMALL_COLLECTION (read-write; a bigger request is
  refused with 413), for the forwarder's rejection tests.
"""
import json
import sys


def collection(cid, title, can_write):
    return {
        "id": cid,
        "title": title,
        "can_read": True,
        "can_write": can_write,
        "media_types": ["application/stix+json;version=2.1"],
        "objects": [],
        "manifest": [],
    }


def api_root(title, max_len, collections):
    return {
        "information": {
            "title": title,
            "versions": ["application/taxii+json;version=2.1"],
            "max_content_length": max_len,
        },
        "status": [],
        "collections": collections,
    }


def main():
    base, rw, ro, small = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3], sys.argv[4]
    data = {
        "/discovery": {
            "title": "Canh Gac test NCSC",
            "description": "Local TAXII 2.1 server for the forwarder's tests",
            "default": f"{base}/api1/",
            "api_roots": [f"{base}/api1/", f"{base}/small/"],
        },
        "api1": api_root("NCSC incidents", 10 * 1024 * 1024, [
            collection(rw, "Incidents and indicators", True),
            collection(ro, "Published, read-only", False),
        ]),
        "small": api_root("Small requests only", 2048, [collection(small, "Small", True)]),
    }
    json.dump(data, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
