"""OpenAI's official Python SDK against sambung serve: `python check.py BASE_URL TOKEN REQUEST_JSON`.
Prints one JSON line: what the SDK's own parsers made of the answer, or the error it raised."""
import json
import sys

import openai

base_url, api_key, request = sys.argv[1:4]
client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=30)
body = json.loads(request)
try:
    if body["model"] == "__list__":
        print(json.dumps({"models": [m.model_dump() for m in client.models.list()]}))
    elif body.get("stream"):
        chunks = list(client.chat.completions.create(**body))
        text = "".join((c.choices[0].delta.content or "") if c.choices else "" for c in chunks)
        # Tool calls gathered by their index, as OpenAI documents a client should.
        tool_calls = {}
        for c in chunks:
            for piece in (c.choices[0].delta.tool_calls or []) if c.choices else []:
                call = tool_calls.setdefault(piece.index, {"id": "", "name": "", "arguments": ""})
                call["id"] += piece.id or ""
                call["name"] += (piece.function.name or "") if piece.function else ""
                call["arguments"] += (piece.function.arguments or "") if piece.function else ""
        print(json.dumps({"text": text, "chunks": [c.model_dump() for c in chunks],
                          "toolCalls": [tool_calls[i] for i in sorted(tool_calls)]}))
    else:
        completion = client.chat.completions.create(**body)
        print(json.dumps({"text": completion.choices[0].message.content, "completion": completion.model_dump()}))
except openai.APIStatusError as error:
    print(json.dumps({"error": {"status": error.status_code, "type": error.type, "code": error.code, "message": error.message,
                                "name": type(error).__name__, "retryAfter": error.response.headers.get("retry-after")}}))
except openai.APIError as error:
    print(json.dumps({"error": {"status": None, "type": getattr(error, "type", None), "code": getattr(error, "code", None),
                                "message": error.message, "name": type(error).__name__, "retryAfter": None}}))
