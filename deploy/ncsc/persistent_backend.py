"""medallion's memory backend, kept on disk.

Why: medallion's MemoryBackend loads its JSON file once and forgets every change on restart.
The forwarder's tests restart the server in the middle of a run to prove that nothing is lost
and nothing arrives twice; that needs a server that, like a real one, still holds what it
acknowledged. This backend saves the whole data set to the same file (atomically: a temporary
file, then rename) after every change that medallion reports back to the client, so anything
the client was told is stored survives a restart. Test and development use only.

Configure medallion with
  "backend": {"module": "persistent_backend", "module_class": "PersistentMemoryBackend",
              "filename": "/path/to/data.json"}
and this directory on PYTHONPATH.
"""
import json
import os
import threading

from medallion.backends.memory_backend import MemoryBackend


class PersistentMemoryBackend(MemoryBackend):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._path = kwargs.get("filename")
        self._lock = threading.Lock()

    def _save(self):
        if not self._path:
            return
        tmp = self._path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._path)

    def add_objects(self, api_root, collection_id, objs, request_time):
        # One writer at a time: the check for an already present id+version and the save
        # must not interleave with another request's.
        with self._lock:
            status = super().add_objects(api_root, collection_id, objs, request_time)
            self._save()
            return status

    def delete_object(self, api_root, collection_id, obj_id, filter_args, allowed_filters):
        with self._lock:
            result = super().delete_object(api_root, collection_id, obj_id, filter_args, allowed_filters)
            self._save()
            return result
