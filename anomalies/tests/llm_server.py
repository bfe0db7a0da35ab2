"""A tiny OpenAI-compatible chat-completions server for tests (127.0.0.1, ephemeral port).

    with FakeLLMServer() as server:
        server.behaviour = "good"        # or "malformed", "unknown", "slow", "error", "empty", and
                                         # the shapes real models answer in: "recommendations",
                                         # "bare_list", "fenced_full_names"
        server.models = ["ECOD", "HBOS", "KNN"]
        config = LLMConfig(api_key="test", base_url=server.base_url, model="fake", timeout_seconds=1)

Requests are recorded in ``server.requests`` (parsed JSON bodies) so a test can check the prompt.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeLLMServer:
    def __init__(self) -> None:
        self.behaviour = "good"
        self.models: list[str] = ["ECOD", "HBOS", "KNN"]
        self.full_names: list[str] = ["Histogram-based Outlier Score", "Isolation Forest", "copod"]
        self.slow_seconds = 3.0
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
                return

            def do_POST(self) -> None:  # noqa: N802 - stdlib name
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                server.requests.append(body)
                if server.behaviour == "error":
                    self._send(500, {"error": {"message": "boom", "type": "server_error"}})
                    return
                if server.behaviour == "slow":
                    time.sleep(server.slow_seconds)
                content = {
                    "good": json.dumps({"models": server.models, "reasoning": "fast, parameter-free"}),
                    "slow": json.dumps({"models": server.models, "reasoning": "late"}),
                    "malformed": '{"models": ["ECOD", ',
                    "unknown": json.dumps({"models": ["DeepMagicOD", "Foo"], "reasoning": "made up"}),
                    "empty": json.dumps({"models": [], "reasoning": "nothing"}),
                    # {"recommendations": [{"algorithm": ...}]}, as a real OpenAI-compatible model answered.
                    "recommendations": json.dumps(
                        {
                            "recommendations": [
                                {
                                    "algorithm": name,
                                    "reason": f"{name} suits short monthly series",
                                    "expected_performance": "good",
                                    "computational_cost": "low",
                                }
                                for name in server.models
                            ]
                        }
                    ),
                    # A bare list, names under "Name" in another case.
                    "bare_list": json.dumps(
                        [
                            {"Name": name, "Why": "robust", "Expected Performance": "high", "Computational Cost": "O(n)"}
                            for name in server.models
                        ]
                    ),
                    # Markdown-fenced, full names under "model", numbered keys.
                    "fenced_full_names": "```json\n"
                    + json.dumps(
                        {
                            "top_3": {
                                str(i + 1): {
                                    "model": full,
                                    "why_suitable": "parameter-free",
                                    "expected_performance": "solid",
                                    "computational_cost": "linear",
                                }
                                for i, full in enumerate(server.full_names)
                            }
                        }
                    )
                    + "\n```",
                }[server.behaviour]
                self._send(
                    200,
                    {
                        "id": "chatcmpl-test",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body.get("model", "fake"),
                        "choices": [
                            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}
                        ],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    },
                )

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> FakeLLMServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
