// The AI SDK's own code (ai 6.0.230) reading replies from `sambung serve`: its strict
// `uiMessageChunkSchema` with `readUIMessageStream`, or its `DefaultChatTransport` (what
// `useChat` uses). process.argv = [mode (raw | transport), base URL, chat id, cookie header,
// JSON options]. Prints the assembled UI message as JSON.
import { DefaultChatTransport, parseJsonEventStream, readUIMessageStream, uiMessageChunkSchema } from "ai";

const [mode, base, chatId, cookie, options] = process.argv.slice(2);
// `files`: the question's FileUIParts, as `sendMessage({ text, files })` puts them before
// its text.
const { content, files = [] } = JSON.parse(options);
const headers = { cookie, origin: base };
let chunks;
if (mode === "transport") {
  const transport = new DefaultChatTransport({ api: `${base}/api/chat`, headers });
  chunks = await transport.sendMessages({
    chatId,
    trigger: "submit-message",
    messageId: undefined,
    abortSignal: undefined,
    messages: [{ id: "u1", role: "user", parts: [...files, { type: "text", text: content }] }],
  });
} else {
  const response = await fetch(`${base}/api/v1/chats/${chatId}/generate`, {
    method: "POST",
    headers: { ...headers, "content-type": "application/json" },
    body: JSON.stringify({ content }),
  });
  if (response.headers.get("x-vercel-ai-ui-message-stream") !== "v1") {
    throw new Error(`not a UI message stream: ${response.status} ${await response.text()}`);
  }
  chunks = parseJsonEventStream({ stream: response.body, schema: uiMessageChunkSchema }).pipeThrough(
    new TransformStream({
      transform(result, controller) {
        if (!result.success) throw result.error;
        controller.enqueue(result.value);
      },
    }),
  );
}
let last;
const errors = [];
for await (const message of readUIMessageStream({ stream: chunks, onError: (e) => errors.push(String(e)) })) {
  last = message;
}
console.log(JSON.stringify({ message: last, errors }));
