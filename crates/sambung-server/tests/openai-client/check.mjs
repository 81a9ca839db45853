// OpenAI's official Node SDK against sambung serve: `node check.mjs BASE_URL TOKEN REQUEST_JSON`.
// Prints one JSON line: what the SDK's own parsers made of the answer, or the error it raised.
import OpenAI from "openai";

const [baseURL, apiKey, request] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 30_000 });
const body = JSON.parse(request);
try {
  if (body.model === "__list__") {
    const models = [];
    for await (const model of client.models.list()) models.push(model);
    console.log(JSON.stringify({ models }));
  } else if (body.stream) {
    const stream = await client.chat.completions.create(body);
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    const text = chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("");
    // Tool calls gathered by their index, as OpenAI documents a client should.
    const toolCalls = [];
    for (const chunk of chunks) {
      for (const piece of chunk.choices[0]?.delta?.tool_calls ?? []) {
        const call = (toolCalls[piece.index] ??= { id: "", name: "", arguments: "" });
        call.id += piece.id ?? "";
        call.name += piece.function?.name ?? "";
        call.arguments += piece.function?.arguments ?? "";
      }
    }
    console.log(JSON.stringify({ text, chunks, toolCalls }));
  } else {
    const completion = await client.chat.completions.create(body);
    console.log(JSON.stringify({ text: completion.choices[0].message.content, completion }));
  }
} catch (error) {
  console.log(JSON.stringify({ error: { status: error.status ?? null, type: error.type ?? null, code: error.code ?? null, message: String(error.message), name: error.constructor.name, retryAfter: error.headers?.get?.("retry-after") ?? null } }));
}
