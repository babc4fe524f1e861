"""A Hub dataset repository scripted on a `http_stub.StubServer`, for tests that run the real HfApi.

It answers the requests `HfApi.create_repo` and `HfApi.upload_folder` make (repo creation, the
card's YAML check, the file listing, preupload and commit) and applies each commit to an
in-memory file table, so a test can compare the Hub copy with the local folder.
"""

from __future__ import annotations

import base64

from http_stub import Reply


class FakeHubRepo:
    """A dataset repository's files on a StubServer, changed by the commits the client sends."""

    def __init__(self, server, repo_id: str, files: dict[str, bytes]) -> None:
        self.server, self.repo_id, self.files = server, repo_id, dict(files)
        api = f"/api/datasets/{repo_id}"
        server.route("POST", r"/api/repos/create", Reply(200, {"url": f"{server.url}/datasets/{repo_id}"}))
        server.route("POST", r"/api/validate-yaml", Reply(200, {"errors": [], "warnings": []}))
        server.route("GET", rf"{api}/tree/main(/.*)?", self._tree)
        server.route("POST", rf"{api}/preupload/main", self._preupload)
        server.route("POST", rf"{api}/commit/main", self._commit)

    def _tree(self, request) -> Reply:
        return Reply(200, [{"type": "file", "path": path, "oid": "0" * 40, "size": len(data)}
                           for path, data in sorted(self.files.items())])

    def _preupload(self, request) -> Reply:
        # "regular": the content travels base64-encoded inside the commit (no LFS/xet storage to script).
        files = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in request.json()["files"]]
        return Reply(200, {"files": files})

    def _commit(self, request) -> Reply:
        for line in request.ndjson():
            if line["key"] == "file":
                self.files[line["value"]["path"]] = base64.b64decode(line["value"]["content"])
            elif line["key"] == "deletedFile":
                self.files.pop(line["value"]["path"], None)
        return Reply(200, {"commitUrl": f"{self.server.url}/datasets/{self.repo_id}/commit/{'a' * 40}",
                           "commitOid": "a" * 40})

    def commits(self) -> list[list[dict]]:
        return [r.ndjson() for r in self.server.requested("POST", rf"/api/datasets/{self.repo_id}/commit/main")]
